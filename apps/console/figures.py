"""The dashboard's figures: a fixed number of aggregate queries, whatever the platform's size.

Every figure is one `GROUP BY` or `COUNT` over an indexed or bounded set; charts read rollups of
a handful of monitors (apps.monitors.rollups), never raw results. `org_ids=None` means the
whole platform (operators); a list scopes every figure to those organizations (tenants), and
platform-only figures (organizations, queues, scheduler lag, throughput) are left out.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Case, Count, Exists, IntegerField, Min, OuterRef, Subquery, Value, When
from django.utils import timezone

from apps.alerts.models import Channel, Notification, NotificationStatus
from apps.console import charts
from apps.console.queues import queue_depths
from apps.incidents.models import OPEN_STATUSES, Incident, Severity
from apps.monitors.models import (
    CheckResult,
    Granularity,
    Monitor,
    MonitorSchedule,
    MonitorStatus,
    ResultRollup,
    ScheduleLane,
)
from apps.statuspages.models import StatusPage
from apps.tenants.models import Invitation, Membership, Organization

CHART_MONITORS = 8
UPTIME_DAYS = 90
THROUGHPUT_WINDOW = timedelta(minutes=5)


def _scope(qs, org_ids: list[Any] | None, field: str = "organization_id__in"):
    return qs if org_ids is None else qs.filter(**{field: org_ids})


def monitor_counts(org_ids: list[Any] | None) -> dict[str, int]:
    counts = {"total": 0, "paused": 0, **dict.fromkeys(MonitorStatus.values, 0)}
    rows = _scope(Monitor.objects.all(), org_ids).values("status", "paused").annotate(n=Count("pk"))
    for row in rows.order_by():
        counts["total"] += row["n"]
        counts["paused" if row["paused"] else row["status"]] += row["n"]
    return counts


def open_incidents(org_ids: list[Any] | None) -> dict[str, int]:
    rows = (
        _scope(Incident.objects.filter(status__in=OPEN_STATUSES), org_ids)
        .values("severity")
        .annotate(n=Count("pk"))
        .order_by()
    )
    found = {row["severity"]: row["n"] for row in rows}
    # Most urgent first, every severity shown (a zero is information too).
    return {s: found.get(s, 0) for s in reversed(Severity.values)}


def notification_trouble(org_ids: list[Any] | None) -> dict[str, int]:
    rows = (
        _scope(
            Notification.objects.filter(
                status__in=[NotificationStatus.FAILED, NotificationStatus.DEAD]
            ),
            org_ids,
        )
        .values("status")
        .annotate(n=Count("pk"))
        .order_by()
    )
    found = {row["status"]: row["n"] for row in rows}
    return {"failed": found.get("failed", 0), "dead": found.get("dead", 0)}


def checks_per_minute(now: datetime) -> float:
    window = THROUGHPUT_WINDOW.total_seconds() / 60
    done = CheckResult.objects.filter(checked_at__gt=now - THROUGHPUT_WINDOW).count()
    return round(done / window, 1)


def scheduler_lag(now: datetime) -> dict[str, Any]:
    """How late the dispatcher is: the oldest check still due, and how many are due.

    A healthy dispatcher (every few seconds) keeps this at a few seconds; minutes mean beat or
    the dispatcher stopped, or workers cannot keep up.
    """
    row = MonitorSchedule.objects.filter(lane=ScheduleLane.CHECK, next_check_at__lte=now).aggregate(
        oldest=Min("next_check_at"), due=Count("pk")
    )
    lag = (now - row["oldest"]).total_seconds() if row["oldest"] else 0.0
    return {"seconds": round(lag, 1), "due": row["due"]}


def chart_monitors(org_ids: list[Any] | None) -> list[Monitor]:
    """The monitors worth a chart: down first, then degraded, then the latest to change."""
    urgency = Case(
        When(status=MonitorStatus.DOWN, then=Value(0)),
        When(status=MonitorStatus.DEGRADED, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    qs = _scope(Monitor.objects.filter(paused=False), org_ids)
    return list(
        qs.select_related("organization")
        .annotate(urgency=urgency)
        .order_by("urgency", "-status_changed_at", "name")[:CHART_MONITORS]
    )


def _ratio(up: int, degraded: int, total: int, inconclusive: int) -> float | None:
    counted = total - inconclusive
    return (up + degraded) / counted if counted > 0 else None


def monitor_charts(monitors: list[Monitor], now: datetime) -> list[dict[str, Any]]:
    """Per monitor: a 24-hour response-time sparkline (hourly rollups) and 90 daily uptime
    bars (daily rollups; today from its hours so far). Two queries for all of them."""
    if not monitors:
        return []
    ids = [m.pk for m in monitors]
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    first_hour = this_hour - timedelta(hours=23)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    first_day = today - timedelta(days=UPTIME_DAYS - 1)
    fields = ("monitor_id", "bucket_start", "up", "degraded", "total", "inconclusive")
    hourly = ResultRollup.objects.filter(
        monitor_id__in=ids, granularity=Granularity.HOUR, bucket_start__gte=first_hour
    ).values_list(*fields, "latency_sum_ms", "latency_count")
    daily = ResultRollup.objects.filter(
        monitor_id__in=ids, granularity=Granularity.DAY, bucket_start__gte=first_day
    ).values_list(*fields)
    latency: dict[Any, dict[datetime, float]] = defaultdict(dict)
    days: dict[Any, dict[datetime, list[int]]] = defaultdict(dict)
    for mid, start, up, degraded, total, inconclusive, lat_sum, lat_n in hourly.order_by():
        if lat_n:
            latency[mid][start] = lat_sum / lat_n
        if start >= today:
            acc = days[mid].setdefault(today, [0, 0, 0, 0])
            for i, n in enumerate((up, degraded, total, inconclusive)):
                acc[i] += n
    for mid, start, up, degraded, total, inconclusive in daily.order_by():
        day = start.replace(hour=0, minute=0, second=0, microsecond=0)
        if day < today:
            days[mid][day] = [up, degraded, total, inconclusive]
    hours = [first_hour + timedelta(hours=i) for i in range(24)]
    day_list = [first_day + timedelta(days=i) for i in range(UPTIME_DAYS)]
    out = []
    for monitor in monitors:
        series = [latency[monitor.pk].get(h) for h in hours]
        ratios = [_ratio(*days[monitor.pk][d]) if d in days[monitor.pk] else None for d in day_list]
        known = [r for r in ratios if r is not None]
        out.append(
            {
                "monitor": monitor,
                "sparkline": charts.sparkline(series),
                "uptime_bars": charts.uptime_bars(ratios),
                "uptime": round(sum(known) / len(known) * 100, 2) if known else None,
                "last_ms": next((v for v in reversed(series) if v is not None), None),
            }
        )
    return out


def platform_dashboard(*, now: datetime | None = None) -> dict[str, Any]:
    """Operators' figures for the whole platform (10 queries, see tests/core/test_console_*)."""
    now = now or timezone.now()
    return {
        "scope": "platform",
        "organizations": Organization.objects.count(),
        "monitors": monitor_counts(None),
        "incidents": open_incidents(None),
        "notifications": notification_trouble(None),
        "checks_per_minute": checks_per_minute(now),
        "scheduler": scheduler_lag(now),
        "queues": queue_depths(),
        "charts": monitor_charts(chart_monitors(None), now),
        "now": now,
    }


def organization_dashboard(*, org_ids: list[Any], now: datetime | None = None) -> dict[str, Any]:
    """A tenant's figures: only rows of the given organizations, no platform-wide numbers."""
    now = now or timezone.now()
    return {
        "scope": "organization",
        "monitors": monitor_counts(org_ids),
        "incidents": open_incidents(org_ids),
        "notifications": notification_trouble(org_ids),
        "charts": monitor_charts(chart_monitors(org_ids), now),
        "now": now,
    }


ONBOARDING_STEPS = (
    ("monitor", "Create a monitor", "admin:monitors_monitor_add"),
    ("channel", "Add an alert channel", "admin:alerts_channel_add"),
    ("member", "Invite a member", "admin:tenants_invitation_add"),
    ("status_page", "Add a status page", "admin:statuspages_statuspage_add"),
)


def onboarding(*, org_id: Any) -> dict[str, Any] | None:
    """A new organization's first steps, each ticked when its row exists (one query); None
    once all are done, so the checklist leaves the dashboard by itself."""
    from django.urls import reverse

    members = (
        Membership.objects.filter(organization_id=OuterRef("pk"))
        .order_by()
        .values("organization_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    row = (
        Organization.objects.filter(pk=org_id)
        .annotate(
            has_monitor=Exists(Monitor.objects.filter(organization_id=OuterRef("pk"))),
            has_channel=Exists(Channel.objects.filter(organization_id=OuterRef("pk"))),
            has_status_page=Exists(StatusPage.objects.filter(organization_id=OuterRef("pk"))),
            members=Subquery(members, output_field=IntegerField()),
            # An invitation sent counts: the step is the owner's, not the invitee's.
            has_invited=Exists(Invitation.objects.filter(organization_id=OuterRef("pk"))),
        )
        .values("name", "has_monitor", "has_channel", "has_status_page", "members", "has_invited")
        .first()
    )
    if row is None:
        return None
    done = {
        "monitor": row["has_monitor"],
        "channel": row["has_channel"],
        "member": (row["members"] or 0) > 1 or row["has_invited"],
        "status_page": row["has_status_page"],
    }
    if all(done.values()):
        return None
    steps = [
        {"key": key, "label": label, "url": reverse(url), "done": bool(done[key])}
        for key, label, url in ONBOARDING_STEPS
    ]
    return {
        "organization": row["name"],
        "steps": steps,
        "done": sum(1 for step in steps if step["done"]),
    }
