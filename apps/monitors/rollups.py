"""Hourly and daily rollups of check results, uptime from rollups, and retention pruning.

Latency histogram: bucket i holds values in [B^i, B^(i+1)) ms with B = 1.04, values below 1 ms
in bucket 0. A percentile is reported as its bucket's geometric midpoint, so its relative error
is at most sqrt(1.04) - 1 ~ 2%; histograms of any hours merge exactly by adding counts, so
that bound holds for a day, a month or a quarter too.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from apps.monitors import accounting, events, rollup_sql
from apps.monitors.models import CheckResult, ErrorRollup, Granularity, ResultRollup

BASE = 1.04
_LOG_BASE = math.log(BASE)


def bucket_of(ms: float) -> int:
    return 0 if ms < 1 else int(math.log(ms) / _LOG_BASE)


def bucket_value(index: int) -> float:
    return BASE ** (index + 0.5)


def percentile(histogram: dict[str, int] | dict[int, int], q: float) -> float | None:
    """The q-quantile (0..1) of a histogram, at its bucket's geometric midpoint."""
    counts = sorted((int(k), v) for k, v in histogram.items() if v)
    total = sum(v for _, v in counts)
    if not total:
        return None
    rank = q * (total - 1)
    seen = 0
    for index, count in counts:
        seen += count
        if seen > rank:
            return round(bucket_value(index), 3)
    return round(bucket_value(counts[-1][0]), 3)


def merge(histograms: Iterable[dict]) -> dict[str, int]:
    merged: dict[str, int] = defaultdict(int)
    for histogram in histograms:
        for key, count in histogram.items():
            merged[str(key)] += count
    return dict(merged)


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


_OUTCOMES = ("up", "degraded", "down", "inconclusive")
_ACCOUNTING = (
    "maint_up",
    "maint_degraded",
    "maint_down",
    "maint_inconclusive",
    "dependency_down",
)


class _Acc:
    __slots__ = (
        "acct",
        "counts",
        "errors",
        "hist",
        "lat_count",
        "lat_max",
        "lat_min",
        "lat_sum",
        "maint_seconds",
        "org",
    )

    def __init__(self, org) -> None:
        self.org = org
        self.counts = dict.fromkeys(_OUTCOMES, 0)
        self.acct = dict.fromkeys(_ACCOUNTING, 0)
        self.maint_seconds = 0.0
        self.hist: dict[str, int] = defaultdict(int)
        self.lat_count, self.lat_sum = 0, 0.0
        self.lat_min: float | None = None
        self.lat_max: float | None = None
        # (outcome, error class, message) -> [count, first seen, last seen]
        self.errors: dict[tuple[str, str, str], list] = {}

    def add(self, outcome: str, ms: float | None) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if ms is not None:
            self.hist[str(bucket_of(ms))] += 1
            self.lat_count += 1
            self.lat_sum += ms
            self.lat_min = ms if self.lat_min is None else min(self.lat_min, ms)
            self.lat_max = ms if self.lat_max is None else max(self.lat_max, ms)

    def add_error(self, outcome: str, error_class: str, message: str, at: datetime) -> None:
        key = (outcome, error_class or "", (message or "")[:200])
        seen = self.errors.get(key)
        if seen is None:
            self.errors[key] = [1, at, at]
        else:
            seen[0] += 1
            seen[1] = min(seen[1], at)
            seen[2] = max(seen[2], at)

    def merge_row(self, r: ResultRollup) -> None:
        for key in _OUTCOMES:
            self.counts[key] += getattr(r, key)
        for key in _ACCOUNTING:
            self.acct[key] += getattr(r, key)
        self.maint_seconds += r.maintenance_seconds
        for key, count in r.histogram.items():
            self.hist[key] += count
        self.lat_count += r.latency_count
        self.lat_sum += r.latency_sum_ms
        if r.latency_min_ms is not None:
            self.lat_min = (
                r.latency_min_ms if self.lat_min is None else min(self.lat_min, r.latency_min_ms)
            )
        if r.latency_max_ms is not None:
            self.lat_max = (
                r.latency_max_ms if self.lat_max is None else max(self.lat_max, r.latency_max_ms)
            )

    def fields(self) -> dict:
        hist = dict(self.hist)
        return {
            "total": sum(self.counts.values()),
            **{k: self.counts.get(k, 0) for k in _OUTCOMES},
            **self.acct,
            "maintenance_seconds": self.maint_seconds,
            "latency_count": self.lat_count,
            "latency_sum_ms": self.lat_sum,
            "latency_min_ms": self.lat_min,
            "latency_max_ms": self.lat_max,
            "p50_ms": percentile(hist, 0.5),
            "p95_ms": percentile(hist, 0.95),
            "p99_ms": percentile(hist, 0.99),
            "histogram": hist,
        }


def _is_error(outcome: str, error_class: str) -> bool:
    return outcome in ("down", "inconclusive") or bool(error_class)


def accumulate(
    start: datetime, end: datetime, *, monitor_ids: Iterable | None = None
) -> dict[object, _Acc]:
    """Fold the raw results of [start, end) (at most an hour) into one accumulator per monitor,
    deciding for each result whether maintenance covered it and whether a parent was down.

    The rollup job and the SLA engine's current hour both come through here, so a live hour
    and a rolled-up one count the same way.
    """
    qs = CheckResult.objects.filter(checked_at__gte=start, checked_at__lt=end)
    if monitor_ids is not None:
        qs = qs.filter(monitor_id__in=list(monitor_ids))
    rows = qs.values_list(
        "monitor_id",
        "organization_id",
        "outcome",
        "response_time_ms",
        "checked_at",
        "error_class",
        "error_message",
    ).iterator(chunk_size=10_000)
    raw: dict[object, list] = defaultdict(list)
    orgs: dict[object, object] = {}
    for monitor_id, org_id, *rest in rows:
        raw[monitor_id].append(rest)
        orgs[monitor_id] = org_id
    answers = events.hour_context.send(monitor_ids=raw.keys(), start=start, end=end)
    ctx = answers[0] if answers else accounting.HourContext()
    acc: dict[object, _Acc] = {}
    for monitor_id, results in raw.items():
        a = acc[monitor_id] = _Acc(orgs[monitor_id])
        a.maint_seconds = ctx.maintenance_seconds(monitor_id)
        check_maint = monitor_id in ctx.maintenance
        check_parent = monitor_id in ctx.parent_down
        for outcome, ms, at, error_class, message in results:
            # Latency of failed checks (timeouts, refusals) is not the service's latency.
            a.add(outcome, ms if outcome in ("up", "degraded") else None)
            if _is_error(outcome, error_class):
                a.add_error(outcome, error_class, message, at)
            if check_maint and ctx.in_maintenance(monitor_id, at):
                key = f"maint_{outcome}"
                if key in a.acct:
                    a.acct[key] += 1
            elif outcome == "down" and check_parent and ctx.parent_is_down(monitor_id, at):
                a.acct["dependency_down"] += 1
    return acc


def rollup_hour(hour_start: datetime) -> int:
    """(Re)compute the hourly rollups (and error groups) of one hour from raw results, in
    set-based statements the database runs (apps.monitors.rollup_sql). Idempotent."""
    return rollup_sql.rollup_hour(_hour(hour_start), base=BASE)


def rollup_hour_by_rows(hour_start: datetime) -> int:
    """`rollup_hour` folding each raw result in Python, as it was computed before: kept as
    the reference the set-based statements are tested and benchmarked against."""
    hour_start = _hour(hour_start)
    acc = accumulate(hour_start, hour_start + timedelta(hours=1))
    _store(Granularity.HOUR, hour_start, acc)
    _store_errors(hour_start, acc)
    return len(acc)


def rollup_day(day_start: datetime) -> int:
    """Merge a day's hourly rollups into a daily one (no raw scan). Idempotent."""
    day_start = day_start.replace(hour=0, minute=0, second=0, microsecond=0)
    hours = ResultRollup.objects.filter(
        granularity=Granularity.HOUR,
        bucket_start__gte=day_start,
        bucket_start__lt=day_start + timedelta(days=1),
    )
    acc: dict[object, _Acc] = {}
    for r in hours.iterator(chunk_size=2000):
        a = acc.get(r.monitor_id)
        if a is None:
            a = acc[r.monitor_id] = _Acc(r.organization_id)
        a.merge_row(r)
    _store(Granularity.DAY, day_start, acc)
    return len(acc)


def _store_errors(hour_start: datetime, acc: dict[object, _Acc]) -> None:
    rows = [
        ErrorRollup(
            monitor_id=monitor_id,
            organization_id=a.org,
            bucket_start=hour_start,
            outcome=outcome,
            error_class=error_class,
            message=message,
            count=count,
            first_seen=first,
            last_seen=last,
        )
        for monitor_id, a in acc.items()
        for (outcome, error_class, message), (count, first, last) in a.errors.items()
    ]
    # Replace the hour's groups wholesale: a re-run (late results) must not double-count.
    with transaction.atomic():
        ErrorRollup.objects.filter(bucket_start=hour_start).delete()
        ErrorRollup.objects.bulk_create(rows, batch_size=1000)


def _store(granularity: str, start: datetime, acc: dict[object, _Acc]) -> None:
    if not acc:
        return
    rows = [
        ResultRollup(
            monitor_id=monitor_id,
            organization_id=a.org,
            granularity=granularity,
            bucket_start=start,
            **a.fields(),
        )
        for monitor_id, a in acc.items()
    ]
    update = [
        f
        for f in rows[0].__dict__
        if f not in {"_state", "id", "monitor_id", "organization_id", "granularity", "bucket_start"}
    ]
    with transaction.atomic():
        ResultRollup.objects.bulk_create(
            rows,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["monitor", "granularity", "bucket_start"],
            update_fields=update,
        )


def rollup_recent(*, now: datetime | None = None, hours: int = 2) -> None:
    """The beat job: the last complete hours (late results land in a re-run) and yesterday."""
    now = now or timezone.now()
    current = _hour(now)
    for n in range(1, hours + 1):
        rollup_hour(current - timedelta(hours=n))
    if now.hour < hours + 1:  # shortly after midnight, close yesterday
        rollup_day(current - timedelta(days=1))


def prune_results(
    *, now: datetime | None = None, batch: int = 10_000, max_batches: int = 100
) -> int:
    """Delete raw results (and pings, samples) past each organization's plan retention:
    whole day partitions on PostgreSQL, row batches on SQLite (apps.monitors.retention)."""
    from apps.monitors import retention

    return retention.prune_results(now=now, batch=batch, max_batches=max_batches)
