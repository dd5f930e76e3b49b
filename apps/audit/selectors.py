"""Reads for the audit log. Every selector takes the organization.

See docs/decisions/0007-one-tenancy-gate.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db.models import QuerySet

from apps.audit.models import AuditEntry

if TYPE_CHECKING:
    from apps.tenants.models import Organization


def audit_list(
    *,
    org: Organization,
    actor: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEntry]:
    """Newest first. `actor` matches the actor kind (`user`, `api_key`, `operator`, `system`),
    a user's or key's id, or the label (an email, `key hk_...`)."""
    qs = AuditEntry.objects.for_org(org)
    if actor:
        if actor in ("user", "api_key", "operator", "system"):
            qs = qs.filter(actor_kind=actor)
        elif actor.isdigit():
            qs = qs.filter(actor_user_id=int(actor))
        else:
            try:
                import uuid

                qs = qs.filter(actor_api_key_id=uuid.UUID(actor))
            except ValueError:
                qs = qs.filter(actor_label__iexact=actor)
    if object_type:
        qs = qs.filter(object_type=object_type)
    if object_id:
        qs = qs.filter(object_id=object_id)
    if action:
        qs = qs.filter(action=action)
    if since:
        qs = qs.filter(at__gte=since)
    if until:
        qs = qs.filter(at__lt=until)
    return qs.order_by("-at", "-id")


def changes_before(
    *, org: Organization, until: datetime, since: datetime, limit: int = 20
) -> list[AuditEntry]:
    """Changes people or the system made in a window, newest first (root-cause evidence).
    Healing runs are excluded: they are a consequence, not a cause."""
    return list(
        AuditEntry.objects.for_org(org)
        .filter(at__gte=since, at__lte=until)
        .exclude(object_type="healingattempt")
        .order_by("-at", "-id")[:limit]
    )
