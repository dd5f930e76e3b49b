"""Writes for the audit log: `record`, the one call every audited service makes.

    from apps.audit import services as audit

    before = audit.snapshot(monitor)
    ...change the monitor...
    audit.record(org=org, action="monitor.updated", target=monitor, before=before)

`record` must run inside the transaction that makes the change (every audited service
already opens one), so the entry commits or rolls back with it. Recording happens on every
plan; only reading is gated by the `audit_logs` feature.

`record_many` records a bulk change; `SYSTEM`, `system_actor(label)` and `user_actor(user)` name
an actor explicitly, and `acting_as(actor)` holds one for a whole block (a management command,
a task acting for a person).
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import uuid
from typing import Any

from django.db import models, transaction

# Re-exported: who acts, for callers that name the actor themselves.
from apps.audit.context import SYSTEM as SYSTEM
from apps.audit.context import Actor, current_actor
from apps.audit.context import acting_as as acting_as
from apps.audit.context import system_actor as system_actor
from apps.audit.context import user_actor as user_actor
from apps.audit.models import AuditEntry
from healthorch.logging import request_id_var

logger = logging.getLogger(__name__)

REDACTED = "[redacted]"
# Field names whose values never enter the log: a changed secret shows as "[redacted]".
_SECRET_WORDS = ("secret", "password", "token", "key_hash", "authorization", "api_key")
# Bookkeeping that changes on its own and says nothing about what a person did.
_NOISE = {"updated_at", "created_at", "next_check_at", "last_checked_at", "last_used_at"}


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _plain(value: Any) -> Any:
    """A JSON-safe copy of a field value."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, models.Model):
        return str(value.pk)
    if isinstance(value, dict):
        return {str(k): (REDACTED if _is_secret(str(k)) else _plain(v)) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    return value


def snapshot(obj: models.Model, fields: list[str] | None = None) -> dict[str, Any]:
    """The audited state of a row: its concrete fields (or `fields`), JSON-safe, secrets
    replaced by a marker that still changes when the secret does (so a rotation shows)."""
    out: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        name = field.name
        if fields is not None and name not in fields:
            continue
        if fields is None and (name in _NOISE or field.primary_key):
            continue
        value = getattr(obj, field.attname)
        if _is_secret(name):
            out[name] = f"{REDACTED}:{hash(value) & 0xFFFF:x}" if value else ""
        else:
            out[name] = _plain(value)
    return out


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """{field: {"before", "after"}} for the fields that differ."""
    # Values made JSON-safe (nested secret keys redacted); top-level secrets were already
    # replaced by snapshot()'s marker, which still differs when the secret changes.
    before = {k: _plain(v) for k, v in (before or {}).items()}
    after = {k: _plain(v) for k, v in (after or {}).items()}
    changes = {}
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old != new:
            if _is_secret(name):
                old = REDACTED if old else old
                new = REDACTED if new else new
            changes[name] = {"before": old, "after": new}
    return changes


def record(
    *,
    org: Any,
    action: str,
    target: models.Model | None = None,
    object_type: str | None = None,
    object_id: Any = None,
    object_repr: str | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    actor: Actor | None = None,
) -> AuditEntry:
    """Append one entry: who (the current request's user or API key, an operator in the
    console, or the system), what (`action`), to which object, the changed fields and the
    request id. `after` defaults to a fresh snapshot of `target` when `before` is given (an
    update); pass `before` only for a deletion's last state."""
    actor = actor or current_actor()
    if target is not None:
        object_type = object_type or target._meta.model_name
        object_id = target.pk if object_id is None else object_id
        object_repr = object_repr if object_repr is not None else str(target)
        if before is not None and after is None and not action.endswith((".deleted", ".removed")):
            after = snapshot(target, fields=list(before))
    entry = _entry(
        org,
        actor,
        action,
        {
            "object_type": object_type or "",
            "object_id": "" if object_id is None else object_id,
            "object_repr": object_repr,
            "before": before,
            "after": after,
        },
        data,
    )
    entry.save(force_insert=True)
    logger.info(
        "audit: %s by %s on %s %r",
        action,
        actor.label,
        entry.object_type or "-",
        entry.object_repr or entry.object_id,
        extra={"action": action, "object_id": entry.object_id, "actor": actor.label},
    )
    return entry


def record_many(
    *,
    org: Any,
    action: str,
    objects: list[dict[str, Any]],
    data: dict[str, Any] | None = None,
    actor: Actor | None = None,
) -> list[AuditEntry]:
    """Append one entry per object of a bulk change (a downgrade pausing 500 monitors) in one
    INSERT. Each item: `object_type`, `object_id`, `object_repr`, optional `before`/`after`."""
    if not objects:
        return []
    actor = actor or current_actor()
    entries = AuditEntry.objects.bulk_create(
        _entry(org, actor, action, item, data) for item in objects
    )
    logger.info(
        "audit: %s by %s on %d objects",
        action,
        actor.label,
        len(entries),
        extra={"action": action, "count": len(entries), "actor": actor.label},
    )
    return entries


def _entry(
    org: Any, actor: Actor, action: str, item: dict[str, Any], data: dict[str, Any] | None
) -> AuditEntry:
    """One unsaved entry: the actor and request id of now, the object and changes of `item`."""
    request_id = request_id_var.get()
    return AuditEntry(
        organization_id=org.pk if isinstance(org, models.Model) else org,
        actor_kind=actor.kind,
        actor_user=actor.user,
        actor_api_key=actor.api_key,
        actor_label=actor.label,
        action=action,
        object_type=item["object_type"],
        object_id=str(item["object_id"]),
        object_repr=str(item.get("object_repr") or "")[:200],
        changes=diff(item.get("before"), item.get("after")),
        data=_plain(data or {}),
        request_id="" if request_id == "-" else request_id,
    )


def delete_recorded(obj: models.Model, *, action: str, fields: list[str] | None = None) -> None:
    """Delete a tenant's object and record it (its last state, or `fields` of it, as
    `before`), in one transaction."""
    with transaction.atomic():
        record(
            org=obj.organization_id,
            action=action,
            target=obj,
            before=snapshot(obj, fields=fields),
        )
        obj.delete()
