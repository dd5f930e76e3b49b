"""Reads for healing. Every selector takes the organization or a row of it.

See docs/decisions/0007-one-tenancy-gate.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, Max, Q, QuerySet

from apps.healing.engine import History
from apps.healing.models import ACTED, AttemptStatus, HealingAttempt, HealingPolicy
from apps.tenants.models import Organization


def policy_list(*, org: Organization) -> QuerySet[HealingPolicy]:
    return (
        HealingPolicy.objects.for_org(org)
        .select_related("monitor")
        .order_by("priority", "created_at", "id")
    )


def policy_for(*, monitor: Any) -> HealingPolicy | None:
    """The policy that governs a monitor: its own policy first, then tag policies, each by
    priority then age. One query."""
    tags = [t for t in (monitor.tags or []) if t]
    q = Q(monitor_id=monitor.pk)
    if tags:
        q |= Q(monitor__isnull=True, tag__in=tags)
    candidates = list(
        HealingPolicy.objects.filter(organization_id=monitor.organization_id, enabled=True)
        .filter(q)
        .order_by("priority", "created_at", "id")
    )
    candidates.sort(key=lambda p: (p.monitor_id is None, p.priority))
    return candidates[0] if candidates else None


def history_for(*, incident_id: Any, monitor_id: Any) -> History:
    """How many attempts acted on this incident, whether one is in flight, and when the
    monitor was last acted on (for the cooldown, across incidents). One query."""
    row = HealingAttempt.objects.filter(monitor_id=monitor_id, status__in=ACTED).aggregate(
        acted=Count("id", filter=Q(incident_id=incident_id)),
        in_flight=Count(
            "id",
            filter=Q(
                incident_id=incident_id,
                status__in=[AttemptStatus.PENDING, AttemptStatus.RUNNING],
            ),
        ),
        last=Max("created_at"),
    )
    return History(
        acted_on_incident=row["acted"] or 0,
        last_acted_on_monitor=row["last"],
        in_flight=bool(row["in_flight"]),
    )


def attempt_list(*, org: Organization) -> QuerySet[HealingAttempt]:
    """Newest first; the API filters it (`apps.healing.api.filters`)."""
    return (
        HealingAttempt.objects.for_org(org)
        .select_related("policy", "monitor")
        .order_by("-created_at", "-id")
    )


# The anomaly model's inputs: bounded reads through the (monitor, checked_at) and the
# (organization, source, name, ts) indexes, newest first.
SERIES_DAYS = 15
SERIES_MAX_POINTS = 6000


def latency_series(*, monitor: Any, now: datetime) -> list[tuple[datetime, float]]:
    from datetime import timedelta

    from apps.monitors.models import CheckResult

    rows = (
        CheckResult.objects.filter(
            monitor_id=monitor.pk,
            checked_at__gte=now - timedelta(days=SERIES_DAYS),
            checked_at__lte=now,
            response_time_ms__isnull=False,
        )
        .order_by("-checked_at")
        .values_list("checked_at", "response_time_ms")[:SERIES_MAX_POINTS]
    )
    return list(rows)


def metric_series(*, monitor: Any, now: datetime) -> list[tuple[datetime, float]]:
    """The ingested samples a metric monitor watches; empty for other kinds."""
    from datetime import timedelta

    from apps.monitors.models import MetricSample, MonitorKind

    config = monitor.config or {}
    if monitor.kind != MonitorKind.METRIC or not config.get("source"):
        return []
    rows = (
        MetricSample.objects.filter(
            organization_id=monitor.organization_id,
            source=config["source"],
            name=config.get("metric", ""),
            ts__gte=now - timedelta(days=SERIES_DAYS),
            ts__lte=now,
        )
        .order_by("-ts")
        .values_list("ts", "value")[:SERIES_MAX_POINTS]
    )
    return list(rows)
