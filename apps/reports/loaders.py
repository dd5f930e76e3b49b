"""What the SLA engine reads: rollup rows (daily for whole UTC days, hourly for the rest),
local violation days, the last hours for burn rates, incidents and the status-change log.
Each function is one or two queries whatever the number of monitors."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.db.models import Min, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from apps.incidents import selectors as incident_selectors
from apps.incidents.models import Incident
from apps.monitors.models import Granularity, ResultRollup
from apps.reports import sla
from apps.reports.sla import COUNTS, Tally

_SUMS = {f"s_{k}": Sum(k) for k in (*COUNTS, "maintenance_seconds")}


UTC_NAMES = {"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/Universal", "Universal", "Zulu"}
_ROW = (
    "monitor_id",
    "bucket_start",
    *COUNTS,
    "maintenance_seconds",
    "latency_count",
    "latency_sum_ms",
    "latency_max_ms",
    "histogram",
)


def _hours(org, ids, start, end) -> QuerySet[ResultRollup]:
    """The organization's hourly rollups of these monitors in [start, end)."""
    return ResultRollup.objects.filter(
        organization=org,
        granularity=Granularity.HOUR,
        monitor_id__in=ids,
        bucket_start__gte=start,
        bucket_start__lt=end,
    )


def local_bad_days(org, ids, start, end, tz) -> dict[Any, dict]:
    """{monitor: {local day: Tally}} for the local days that had any bad hour, in a report
    time zone whose days are not UTC days (the only days that can miss the target).

    Two small queries instead of grouping every hourly row by local day: the hours with a
    failure, then the local days containing them, each day's monitors in one IN list.
    """
    bad = (
        _hours(org, ids, start, end)
        .filter(Q(down__gt=0) | Q(degraded__gt=0))
        .values_list("monitor_id", "bucket_start")
    )
    by_day: dict[Any, set] = defaultdict(set)
    for m, at in bad:
        by_day[at.astimezone(tz).date()].add(m)
    out: dict[Any, dict] = defaultdict(dict)
    if not by_day:
        return out
    days = Q()
    for day, monitors in by_day.items():
        lo = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
        hi = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
        days |= Q(
            monitor_id__in=monitors, bucket_start__gte=max(lo, start), bucket_start__lt=min(hi, end)
        )
    for row in (
        ResultRollup.objects.filter(days, organization=org, granularity=Granularity.HOUR)
        .annotate(day=TruncDate("bucket_start", tzinfo=tz))
        .values("monitor_id", "day")
        .annotate(**_SUMS)
        .order_by()
    ):
        t = Tally()
        t.add({k[2:]: v for k, v in row.items() if k.startswith("s_")})
        out[row["monitor_id"]][row["day"]] = t
    return out


def rollups(org, ids, start, end, tz) -> tuple[dict[Any, dict], dict[Any, Tally]]:
    """Per monitor: {day: (counts, first hour)} and the latency over [start, end).

    Daily rollups serve the whole UTC days inside the range that have them, hourly rollups
    the rest (the edges, days not merged yet): a month of 200 one-minute monitors is ~6,000
    rows instead of 144,000. In a UTC report those rows also give the per-day counts; another
    time zone's days straddle UTC days, so its counts are summed per local day in SQL.
    """
    utc = str(tz) in UTC_NAMES
    days = []
    d = (start + timedelta(days=1) - timedelta(microseconds=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    while d + timedelta(days=1) <= end:
        days.append(d)
        d += timedelta(days=1)
    daily: dict[Any, dict] = defaultdict(dict)
    latency: dict[Any, Tally] = defaultdict(Tally)
    day_first: dict[Any, datetime] = {}
    hour_first: dict[Any, datetime] = {}

    def take(row: tuple, is_day: bool) -> None:
        m, at = row[0], row[1]
        t = latency[m]
        t.add_latency(row[-4], row[-3], row[-2], row[-1])
        counts = dict(zip(COUNTS, row[2 : 2 + len(COUNTS)], strict=True))
        counts["maintenance_seconds"] = row[2 + len(COUNTS)]
        # UTC reports count per UTC day here; other zones keep one total per monitor and get
        # their local days from _local_bad_days.
        key = at.date() if utc else None
        tally, first = daily[m].get(key, (None, None))
        if tally is None:
            tally = Tally()
        tally.add(counts)
        first = at if first is None else min(first, at)
        daily[m][key] = (tally, first)
        if is_day:
            day_first[m] = min(day_first.get(m, at), at)
        else:
            hour_first[m] = min(hour_first.get(m, at), at)

    covered: set = set()
    if days:
        for row in ResultRollup.objects.filter(
            organization=org,
            granularity=Granularity.DAY,
            monitor_id__in=ids,
            bucket_start__gte=days[0],
            bucket_start__lte=days[-1],
        ).values_list(*_ROW):
            take(row, True)
            covered.add(row[1])
    ranges = []
    lo = start
    for day in [*(d for d in days if d in covered)]:
        if lo < day:
            ranges.append((lo, day))
        lo = day + timedelta(days=1)
    if lo < end:
        ranges.append((lo, end))
    if ranges:
        hours = Q()
        for a, b in ranges:
            hours |= Q(bucket_start__gte=a, bucket_start__lt=b)
        for row in ResultRollup.objects.filter(
            hours, organization=org, granularity=Granularity.HOUR, monitor_id__in=ids
        ).values_list(*_ROW):
            take(row, False)
    # A day row starts at midnight; the monitor's first check may be later that day. Only
    # monitors with no hourly row before their first day row need looking at, grouped by
    # that day (usually one IN list).
    refine: dict[datetime, list] = defaultdict(list)
    for m, day in day_first.items():
        if hour_first.get(m) is None or hour_first[m] > day:
            refine[day].append(m)
    if refine:
        first_hours = Q()
        for day, monitors in refine.items():
            first_hours |= Q(
                monitor_id__in=monitors,
                bucket_start__gte=day,
                bucket_start__lt=day + timedelta(days=1),
            )
        for m, first in (
            ResultRollup.objects.filter(first_hours, organization=org, granularity=Granularity.HOUR)
            .values("monitor_id")
            .annotate(first=Min("bucket_start"))
            .order_by()
            .values_list("monitor_id", "first")
        ):
            key = day_first[m].date() if utc else None
            tally, old = daily[m][key]
            # `old` is the day row's midnight unless an hourly row came earlier (then kept).
            daily[m][key] = (tally, first if old == day_first[m] else min(old, first))
    return daily, latency


def recent(org, ids, live_from) -> dict[Any, dict[int, Tally]]:
    """Counts of the last 1 and 6 complete hours per monitor (burn rates)."""
    out: dict[Any, dict[int, Tally]] = defaultdict(lambda: {1: Tally(), 6: Tally()})
    rows = _hours(org, ids, live_from - timedelta(hours=6), live_from)
    for row in rows.values("monitor_id", "bucket_start", *COUNTS, "maintenance_seconds"):
        out[row["monitor_id"]][6].add(row)
        if row["bucket_start"] >= live_from - timedelta(hours=1):
            out[row["monitor_id"]][1].add(row)
    return out


def incidents(org, ids, start, end) -> dict[Any, list[dict]]:
    out: dict[Any, list[dict]] = defaultdict(list)
    for row in Incident.objects.filter(
        organization=org, monitor_id__in=ids, opened_at__gte=start, opened_at__lt=end
    ).values("monitor_id", "opened_at", "acknowledged_at", "resolved_at"):
        out[row["monitor_id"]].append(row)
    return out


def outages(org, ids, start, end) -> dict[Any, float]:
    at_start, changes = incident_selectors.status_changes_between(
        monitor_ids=ids, start=start, end=end, org=org
    )
    return {m: sla.longest_outage(at_start.get(m), changes.get(m, []), start, end) for m in ids}
