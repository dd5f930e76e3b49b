"""The SLA engine: one organization's monitors over one period, from rollups.

Reads (apps.reports.loaders), in a fixed number of queries whatever the number of monitors:
- counts, accounting and latency histograms from daily rollups for the whole UTC days inside
  the period and hourly rollups for the edges; local violation days for other time zones;
- the last six hourly rollups (burn rates);
- the current, not yet rolled-up hour from raw results through the rollup job's own
  accumulator (apps.monitors.rollups.accumulate), so "now" counts like any other hour;
- incidents opened in the period, and the status-change log (longest outage).
Raw results older than the current hour are never read.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.utils import timezone

from apps.monitors.models import Monitor
from apps.monitors.selectors import accumulate
from apps.reports import loaders, sla
from apps.reports.periods import Period, hour_floor
from apps.reports.sla import Accounting, Tally


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

    def for_monitor(self, monitor: Any) -> Targets:
        """The monitor's own availability objective (`slo_target_pct`) where it has one."""
        if monitor.slo_target_pct is None:
            return self
        return replace(self, availability_pct=float(monitor.slo_target_pct))


def monitor_rows(
    *,
    org: Any,
    monitors: list[Monitor],
    period: Period,
    accounting: Accounting,
    tz: zoneinfo.ZoneInfo,
    now: datetime | None = None,
) -> list[dict]:
    """The SLA figures of each monitor over the period (docs/concepts/reports.md states every formula)."""
    now = now or timezone.now()
    ids = [m.pk for m in monitors]
    if not ids:
        return []
    targets = Targets.of(org)
    live_from = hour_floor(now)
    rolled_end = min(period.end, live_from)
    daily, latency = (
        loaders.rollups(org, ids, period.start, rolled_end, tz)
        if rolled_end > period.start
        else ({}, {})
    )
    local_days = (
        loaders.local_bad_days(org, ids, period.start, rolled_end, tz)
        if rolled_end > period.start and str(tz) not in loaders.UTC_NAMES
        else None
    )
    ongoing = period.start <= now < period.end
    live = {}
    if period.end > live_from and now > live_from and now > period.start:
        live = accumulate(max(live_from, period.start), min(now, period.end), monitor_ids=ids)
    recent = loaders.recent(org, ids, live_from) if ongoing else {}
    observed_end = min(now, period.end)
    incidents = loaders.incidents(org, ids, period.start, period.end)
    outages = (
        loaders.outages(org, ids, period.start, observed_end) if observed_end > period.start else {}
    )

    rows = []
    for m in monitors:
        own = targets.for_monitor(m)
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
            if avail is not None and avail < own.availability_pct:
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
                # An ongoing period always gets burn rates (the live hour may be all there is).
                recent=recent[m.pk] if ongoing else None,
                live=acc,
                incidents=incidents.get(m.pk, []),
                longest=outages.get(m.pk, 0.0),
                period=period,
                now=now,
                accounting=accounting,
                targets=own,
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
