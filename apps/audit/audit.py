"""What other apps call: `audit.snapshot(obj)` before a change, `audit.record(...)` after it
(same transaction), `audit.record_many(...)` for a bulk change, `audit.delete_recorded(obj,
action=...)` to delete and record it; `SYSTEM`, `system_actor(label)`
and `user_actor(user)` name an actor explicitly, `acting_as(actor)` for a whole block.
Re-exported here so hooks elsewhere stay one import and one line."""

from apps.audit.context import SYSTEM, acting_as, system_actor, user_actor
from apps.audit.services import delete_recorded, record, record_many, snapshot

__all__ = [
    "SYSTEM",
    "acting_as",
    "delete_recorded",
    "record",
    "record_many",
    "snapshot",
    "system_actor",
    "user_actor",
]
