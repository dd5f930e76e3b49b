"""Reads for alerts. Every selector takes the organization.

See docs/decisions/0007-one-tenancy-gate.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Prefetch, QuerySet

from apps.alerts.models import Channel, EscalationPolicy, EscalationStep, Notification
from apps.tenants.models import Organization


def channel_list(*, org: Organization) -> QuerySet[Channel]:
    return Channel.objects.for_org(org).order_by("created_at", "id")


def policy_list(*, org: Organization) -> QuerySet[EscalationPolicy]:
    steps = EscalationStep.objects.order_by("position").prefetch_related("channels")
    return (
        EscalationPolicy.objects.for_org(org)
        .prefetch_related(Prefetch("steps", queryset=steps))
        .order_by("name", "id")
    )


def notification_list(
    *,
    org: Organization,
    status: str | None = None,
    channel: Any = None,
    incident: Any = None,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Notification]:
    qs = (
        Notification.objects.for_org(org).select_related("channel").prefetch_related("attempt_rows")
    )
    if status:
        qs = qs.filter(status=status)
    if channel:
        qs = qs.filter(channel_id=channel)
    if incident:
        qs = qs.filter(incident_id=incident)
    if kind:
        qs = qs.filter(kind=kind)
    if since:
        qs = qs.filter(created_at__gte=since)
    if until:
        qs = qs.filter(created_at__lt=until)
    return qs
