"""Reads for monitors: what the API, the console and the apps above ask of monitors and their
results. The SLA engine (apps.reports) reads raw results and rollups through `accumulate`
(live hours folded like rolled-up ones) and `percentile` (from a latency histogram)."""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.db.models import Q, QuerySet

from apps.monitors.models import CheckResult, Monitor

# Re-exported: reads other apps make, kept beside the code that writes what they read.
from apps.monitors.reporting import health_summary as health_summary
from apps.monitors.rollups import accumulate as accumulate
from apps.monitors.rollups import percentile as percentile
from apps.tenants.models import Organization


def _json_list_contains(field: str, value: str) -> Q:
    # PostgreSQL answers `@>` from the JSON itself; SQLite has no JSON containment, but tags
    # and regions are validated slugs, so matching the quoted item in the text is exact.
    if connection.vendor == "postgresql":
        return Q(**{f"{field}__contains": [value]})
    return Q(**{f"{field}__icontains": f'"{value}"'})


def monitor_list(
    *,
    org: Organization,
    kind: str | None = None,
    status: str | None = None,
    tag: str | None = None,
    region: str | None = None,
    search: str | None = None,
) -> QuerySet[Monitor]:
    qs = Monitor.objects.for_org(org).select_related("schedule")  # next_check_at
    if kind:
        qs = qs.filter(kind=kind)
    if status:
        qs = qs.filter(status=status)
    if tag:
        qs = qs.filter(_json_list_contains("tags", tag))
    if region:
        qs = qs.filter(_json_list_contains("regions", region))
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(slug__icontains=search))
    return qs.order_by("name", "id")


def result_list(
    *, monitor: Monitor, since: datetime | None = None, until: datetime | None = None
) -> QuerySet[CheckResult]:
    qs = CheckResult.objects.filter(monitor=monitor)
    if since:
        qs = qs.filter(checked_at__gte=since)
    if until:
        qs = qs.filter(checked_at__lt=until)
    return qs
