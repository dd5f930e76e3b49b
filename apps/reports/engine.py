"""The SLA engine: one organization's monitors over one period, from rollups.

Reads, in a fixed number of queries whatever the number of monitors:
- hourly rollups summed in the database per monitor and local day (counts, accounting);
- latency histograms from daily rollups for whole UTC days and hourly ones for the edges;
- the last six hourly rollups (burn rates);
- the current, not yet rolled-up hour from raw results through the rollup job's own
  accumulator (apps.monitors.rollups.accumulate), so "now" counts like any other hour;
- incidents opened in the period, and the status-change log (longest outage).
Raw results older than the current hour are never read.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.db.models import Min, OuterRef, Q, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from apps.incidents.models import Incident, StatusChange
from apps.monitors.models import Granularity, Monitor, ResultRollup
from apps.monitors.rollups import accumulate
from apps.reports import sla
from apps.reports.periods import Period, hour_floor
from apps.reports.sla import COUNTS, Accounting, Tally


@dataclass(frozen=True)
class Targets:
    availability_pct: float
    response_ms: float
    error_pct: float
    plan: str

    @classmethod
    def of(cls, org: Any) -> Targets:
        plan = org.plan
        return cls(
            float(plan.sla_availability_pct),
            float(plan.sla_response_ms),
            float(plan.sla_error_pct),
            plan.code,
        )


_SUMS = {f"s_{k}": Sum(k) for k in (*COUNTS, "maintenance_seconds")}


_UTC_NAMES = {"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/Universal", "Universal", "Zulu"}
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


def _local_bad_days(org, ids, start, end, tz) -> dict[Any, dict]:
    """{monitor: {local day: Tally}} for the local days that had any bad hour, in a report
    time zone whose days are not UTC days (the only days that can miss the target).

    Two small queries instead of grouping every hourly row by local day: the hours with a
    failure, then the local days containing them, each day's monitors in one IN list.
    """
    bad = (
        ResultRollup.objects.filter(
            organization=org,
            granularity=Granularity.HOUR,
            monitor_id__in=ids,
            bucket_start__gte=start,
            bucket_start__lt=end,
        )
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


def _rollups(org, ids, start, end, tz) -> tuple[dict[Any, dict], dict[Any, Tally]]:
    """Per monitor: {day: (counts, first hour)} and the latency over [start, end).

    Daily rollups serve the whole UTC days inside the range that have them, hourly rollups
    the rest (the edges, days not merged yet): a month of 200 one-minute monitors is ~6,000
    rows instead of 144,000. In a UTC report those rows also give the per-day counts; another
    time zone's days straddle UTC days, so its counts are summed per local day in SQL.
    """
    utc = str(tz) in _UTC_NAMES
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


def _recent(org, ids, live_from) -> dict[Any, dict[int, Tally]]:
    """Counts of the last 1 and 6 complete hours per monitor (burn rates)."""
    out: dict[Any, dict[int, Tally]] = defaultdict(lambda: {1: Tally(), 6: Tally()})
    for row in ResultRollup.objects.filter(
        organization=org,
        granularity=Granularity.HOUR,
        monitor_id__in=ids,
        bucket_start__gte=live_from - timedelta(hours=6),
        bucket_start__lt=live_from,
    ).values("monitor_id", "bucket_start", *COUNTS, "maintenance_seconds"):
        out[row["monitor_id"]][6].add(row)
        if row["bucket_start"] >= live_from - timedelta(hours=1):
            out[row["monitor_id"]][1].add(row)
    return out


def _incidents(org, ids, start, end) -> dict[Any, list[dict]]:
    out: dict[Any, list[dict]] = defaultdict(list)
    for row in Incident.objects.filter(
        organization=org, monitor_id__in=ids, opened_at__gte=start, opened_at__lt=end
    ).values("monitor_id", "opened_at", "acknowledged_at", "resolved_at"):
        out[row["monitor_id"]].append(row)
    return out


def _outages(org, ids, start, end) -> dict[Any, float]:
    before = StatusChange.objects.filter(monitor_id=OuterRef("pk"), at__lt=start).order_by(
        "-at", "-id"
    )
    at_start = dict(
        Monitor.objects.filter(pk__in=ids)
        .annotate(s=Subquery(before.values("new")[:1]))
        .values_list("pk", "s")
    )
    changes: dict[Any, list] = defaultdict(list)
    for m, at, new in (
        StatusChange.objects.filter(organization=org, monitor_id__in=ids, at__gte=start, at__lt=end)
        .order_by("at", "id")
        .values_list("monitor_id", "at", "new")
    ):
        changes[m].append((at, new))
    return {m: sla.longest_outage(at_start.get(m), changes.get(m, []), start, end) for m in ids}


def monitor_rows(
    *,
    org: Any,
    monitors: list[Monitor],
    period: Period,
    accounting: Accounting,
    tz: zoneinfo.ZoneInfo,
    now: datetime | None = None,
) -> list[dict]:
    """The SLA figures of each monitor over the period (see the README for every formula)."""
    now = now or timezone.now()
    ids = [m.pk for m in monitors]
    if not ids:
        return []
    targets = Targets.of(org)
    live_from = hour_floor(now)
    rolled_end = min(period.end, live_from)
    daily, latency = (
        _rollups(org, ids, period.start, rolled_end, tz) if rolled_end > period.start else ({}, {})
    )
    local_days = (
        _local_bad_days(org, ids, period.start, rolled_end, tz)
        if rolled_end > period.start and str(tz) not in _UTC_NAMES
        else None
    )
    ongoing = period.start <= now < period.end
    live = {}
    if period.end > live_from and now > live_from and now > period.start:
        live = accumulate(max(live_from, period.start), min(now, period.end), monitor_ids=ids)
    recent = _recent(org, ids, live_from) if ongoing else {}
    observed_end = min(now, period.end)
    incidents = _incidents(org, ids, period.start, period.end)
    outages = _outages(org, ids, period.start, observed_end) if observed_end > period.start else {}

    rows = []
    for m in monitors:
        total = Tally()
        first: datetime | None = None
        bad_days = []
        for _day, (t, first_hour) in daily.get(m.pk, {}).items():
            total.add(t)
            first = first_hour if first is None else min(first, first_hour)
        days = (
            {d: t for d, (t, _) in daily.get(m.pk, {}).items()}
            if local_days is None
            else local_days.get(m.pk, {})
        )
        for day, t in sorted(days.items()):
            avail = t.availability(accounting)
            if avail is not None and avail < targets.availability_pct:
                bad_days.append(day.isoformat())
        lat = latency.get(m.pk, Tally())
        total.add_latency(lat.latency_count, lat.latency_sum_ms, lat.latency_max_ms, lat.hist)
        acc = live.get(m.pk)
        if acc is not None:
            f = acc.fields()
            total.add(f)
            total.add_latency(
                f["latency_count"], f["latency_sum_ms"], f["latency_max_ms"], f["histogram"]
            )
            first = first or max(live_from, period.start)
        rows.append(
            _monitor_row(
                m,
                total,
                first=first,
                bad_days=bad_days,
                recent=recent.get(m.pk),
                live=acc,
                incidents=incidents.get(m.pk, []),
                longest=outages.get(m.pk, 0.0),
                period=period,
                now=now,
                accounting=accounting,
                targets=targets,
            )
        )
    return rows


def _monitor_row(
    m,
    total: Tally,
    *,
    first,
    bad_days,
    recent,
    live,
    incidents,
    longest,
    period,
    now,
    accounting,
    targets,
) -> dict:
    availability = total.availability(accounting)
    good, bad = total.good_bad(accounting)
    observed_end = min(now, period.end)
    # Time before the first check is not the monitor's to answer for.
    measured_from = max(first, period.start) if first else None
    maintenance = total.maintenance_seconds if accounting.exclude_maintenance else 0.0
    observed = (
        (observed_end - measured_from).total_seconds() - maintenance if measured_from else 0.0
    )
    eligible = (period.end - measured_from).total_seconds() - maintenance if measured_from else 0.0
    unavail = total.unavailability(accounting)
    budget = sla.error_budget(
        target_pct=targets.availability_pct,
        unavailability=unavail,
        eligible_seconds=eligible,
        observed_seconds=observed,
    )
    burn_1h = burn_6h = None
    if recent is not None:
        one, six = recent[1], recent[6]
        if live is not None:
            f = live.fields()
            one.add(f)
            six.add(f)
        burn_1h = sla.burn_rate(one.unavailability(accounting), targets.availability_pct)
        burn_6h = sla.burn_rate(six.unavailability(accounting), targets.availability_pct)
    warning = sla.exhaustion_warning(
        budget=budget, burn_6h=burn_6h, target_pct=targets.availability_pct, now=now, end=period.end
    )
    # Down results while a parent was down; never in maintenance (the rollup decided that).
    dependency = total.dependency_down
    own = 100.0 * (good + dependency) / (good + bad) if good + bad else None
    per_result = observed / (good + bad) if good + bad else 0.0
    latency = total.latency()
    error_rate = total.error_rate(accounting)
    figures = sla.incident_figures(
        incidents, interval_seconds=m.interval_seconds, recovery_threshold=m.recovery_threshold
    )
    target_ms = float(m.expected_response_time_ms or targets.response_ms)
    return {
        "monitor": {
            "id": str(m.pk),
            "name": m.name,
            "slug": m.slug,
            "kind": m.kind,
            "tags": list(m.tags or []),
            "critical": m.critical,
        },
        "measured_from": measured_from.isoformat() if measured_from else None,
        "availability_pct": _r(availability, 4),
        "availability_excluding_dependencies_pct": _r(own, 4),
        "checks": {
            "counted": good + bad,
            "available": good,
            "unavailable": bad,
            "inconclusive": total.inconclusive,
            "in_maintenance": total.maint_up
            + total.maint_degraded
            + total.maint_down
            + total.maint_inconclusive,
            "dependency_down": dependency,
        },
        "downtime_seconds": round(bad * per_result, 1),
        "dependency_downtime_seconds": round(dependency * per_result, 1),
        "maintenance_seconds": round(total.maintenance_seconds, 1),
        "response_ms": latency,
        "error_rate_pct": _r(error_rate, 4),
        "incidents": {
            **figures,
            "longest_outage_seconds": round(longest, 1),
            "tuning_hint": sla.tuning_hint(
                figures, failure_threshold=m.failure_threshold, timeout_seconds=m.timeout_seconds
            ),
        },
        "sla": {
            "target_pct": targets.availability_pct,
            "met": None if availability is None else availability >= targets.availability_pct,
            "violation_days": bad_days,
            "error_budget": budget,
            "burn_rate_1h": burn_1h,
            "burn_rate_6h": burn_6h,
            "warning": warning,
        },
        "health_score": sla.health_score(
            availability=availability,
            target_pct=targets.availability_pct,
            p95_ms=latency["p95"],
            target_ms=target_ms,
            error_rate=error_rate,
            target_error_pct=targets.error_pct,
        ),
        "_weight": 2 if m.critical else 1,
        "_tally": total,
    }


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def summarize(rows: list[dict], *, targets: Targets, accounting: Accounting) -> dict:
    """A group's (tag's, organization's) figures from its monitors' rows.

    Availability is the mean over monitors with data (each monitor counts once, whatever its
    interval); latency percentiles come from the merged histograms; the health score is the
    mean of the monitors' scores, critical monitors counted twice.
    """
    with_data = [r for r in rows if r["availability_pct"] is not None]
    merged = Tally()
    for r in rows:
        t = r["_tally"]
        merged.add(t)
        merged.add_latency(t.latency_count, t.latency_sum_ms, t.latency_max_ms, t.hist)
    availability = (
        sum(r["availability_pct"] for r in with_data) / len(with_data) if with_data else None
    )
    scored = [(r["health_score"], r["_weight"]) for r in rows if r["health_score"] is not None]
    score = round(sum(s * w for s, w in scored) / sum(w for _, w in scored)) if scored else None
    incidents = [r["incidents"] for r in rows]
    mtta = [i["mtta_seconds"] for i in incidents if i["mtta_seconds"] is not None]
    mttr = [i["mttr_seconds"] for i in incidents if i["mttr_seconds"] is not None]
    budgets = [r["sla"]["error_budget"] for r in with_data]
    allowed = sum(b["allowed_seconds"] for b in budgets)
    remaining = sum(b["remaining_seconds"] for b in budgets)
    return {
        "monitors": len(rows),
        "monitors_with_data": len(with_data),
        "availability_pct": _r(availability, 4),
        "response_ms": merged.latency(),
        "error_rate_pct": _r(merged.error_rate(accounting), 4),
        "incidents": sum(i["count"] for i in incidents),
        "mtta_seconds": _r(sum(mtta) / len(mtta), 1) if mtta else None,
        "mttr_seconds": _r(sum(mttr) / len(mttr), 1) if mttr else None,
        "longest_outage_seconds": max(
            (i["longest_outage_seconds"] for i in incidents), default=0.0
        ),
        "false_positives": sum(i["false_positives"] for i in incidents),
        "sla": {
            "target_pct": targets.availability_pct,
            "met": None if availability is None else availability >= targets.availability_pct,
            "monitors_in_violation": sum(1 for r in with_data if not r["sla"]["met"]),
            "error_budget_remaining_pct": round(100 * remaining / allowed, 2) if allowed else None,
            "warnings": sum(1 for r in rows if r["sla"]["warning"]),
        },
        "health_score": score,
    }


def public(row: dict) -> dict:
    return {k: v for k, v in row.items() if not k.startswith("_")}
