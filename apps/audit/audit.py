"""The two calls other apps make: `audit.snapshot(obj)` before a change, `audit.record(...)`
after it (same transaction). Re-exported here so hooks elsewhere stay one import and one line."""

from apps.audit.context import SYSTEM, acting_as, system_actor
from apps.audit.services import record, record_many, snapshot

__all__ = ["SYSTEM", "acting_as", "record", "record_many", "snapshot", "system_actor"]
