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


def audit_list(*, org: Organization) -> QuerySet[AuditEntry]:
    """Newest first; the API filters it (`apps.audit.api.filters`)."""
    return AuditEntry.objects.for_org(org).order_by("-at", "-id")


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
