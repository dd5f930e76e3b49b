"""Reads for monitors: what the API, the console and the apps above ask of monitors and their
results. The SLA engine (apps.reports) reads raw results and rollups through `accumulate`
(live hours folded like rolled-up ones) and `percentile` (from a latency histogram); the
slo_burn rule (apps.incidents) reads burn rates and error budgets through `slo_*`."""

from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.db.models import Q, QuerySet

from apps.monitors.configs import METRIC_NAME as METRIC_NAME  # re-exported: the shapes of
from apps.monitors.configs import METRIC_SOURCE as METRIC_SOURCE  # a sample's names
from apps.monitors.models import CheckResult, Granularity, Monitor, ResultRollup

# Re-exported: reads other apps make, kept beside the code that writes what they read.
from apps.monitors.reporting import health_summary as health_summary
from apps.monitors.rollups import accumulate as accumulate
from apps.monitors.rollups import percentile as percentile
from apps.monitors.slo import SLO_SHORT_WINDOWS as SLO_SHORT_WINDOWS
from apps.monitors.slo import Budget as Budget
from apps.monitors.slo import Burn as Burn
from apps.monitors.slo import slo_budgets as slo_budgets
from apps.monitors.slo import slo_burning_candidates as slo_burning_candidates
from apps.monitors.slo import slo_burns as slo_burns
from apps.monitors.watchdog import dispatch_backlog_seconds as dispatch_backlog_seconds
from apps.monitors.watchdog import scheduler_health as scheduler_health
from apps.tenants.models import Organization


def json_list_contains(field: str, value: str) -> Q:
    # PostgreSQL answers `@>` from the JSON itself; SQLite has no JSON containment, but tags
    # and regions are validated slugs, so matching the quoted item in the text is exact.
    if connection.vendor == "postgresql":
        return Q(**{f"{field}__contains": [value]})
    return Q(**{f"{field}__icontains": f'"{value}"'})


def monitor_list(*, org: Organization) -> QuerySet[Monitor]:
    """By name; the API filters them (`apps.monitors.api.filters`)."""
    return Monitor.objects.for_org(org).select_related("schedule").order_by("name", "id")


def result_list(*, monitor: Monitor) -> QuerySet[CheckResult]:
    """The API filters and pages them (`apps.monitors.api.filters`)."""
    return CheckResult.objects.filter(monitor=monitor)


def latency_hours(*, monitor: Monitor, since: datetime, until: datetime) -> QuerySet[ResultRollup]:
    """A monitor's hourly rollups with latency in [since, until), oldest first: its
    response-time series (average, min, max, p95 per hour). One read of the rollup rows."""
    return (
        ResultRollup.objects.filter(
            monitor=monitor,
            granularity=Granularity.HOUR,
            bucket_start__gte=since,
            bucket_start__lt=until,
            latency_count__gt=0,
        )
        .only(
            "bucket_start",
            "latency_count",
            "latency_sum_ms",
            "latency_min_ms",
            "latency_max_ms",
            "p95_ms",
        )
        .order_by("bucket_start")
    )
