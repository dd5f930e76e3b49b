"""Reads for alerts. Every selector takes the organization.

See docs/decisions/0007-one-tenancy-gate.md.
"""

from __future__ import annotations

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


def notification_list(*, org: Organization) -> QuerySet[Notification]:
    """The delivery log; the API filters it (`apps.alerts.api.filters`)."""
    return (
        Notification.objects.for_org(org).select_related("channel").prefetch_related("attempt_rows")
    )
