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
from django.db.models import Q
from django.utils import timezone

from apps.monitors.models import CheckResult, Granularity, Monitor, ResultRollup

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


class _Acc:
    __slots__ = ("counts", "hist", "lat_count", "lat_max", "lat_min", "lat_sum", "org")

    def __init__(self, org) -> None:
        self.org = org
        self.counts = {"up": 0, "degraded": 0, "down": 0, "inconclusive": 0}
        self.hist: dict[str, int] = defaultdict(int)
        self.lat_count, self.lat_sum = 0, 0.0
        self.lat_min: float | None = None
        self.lat_max: float | None = None

    def add(self, outcome: str, ms: float | None) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if ms is not None:
            self.hist[str(bucket_of(ms))] += 1
            self.lat_count += 1
            self.lat_sum += ms
            self.lat_min = ms if self.lat_min is None else min(self.lat_min, ms)
            self.lat_max = ms if self.lat_max is None else max(self.lat_max, ms)

    def fields(self) -> dict:
        hist = dict(self.hist)
        return {
            "total": sum(self.counts.values()),
            **{k: self.counts.get(k, 0) for k in ("up", "degraded", "down", "inconclusive")},
            "latency_count": self.lat_count,
            "latency_sum_ms": self.lat_sum,
            "latency_min_ms": self.lat_min,
            "latency_max_ms": self.lat_max,
            "p50_ms": percentile(hist, 0.5),
            "p95_ms": percentile(hist, 0.95),
            "p99_ms": percentile(hist, 0.99),
            "histogram": hist,
        }


def rollup_hour(hour_start: datetime) -> int:
    """(Re)compute the hourly rollups of one hour from raw results. Idempotent."""
    hour_start = _hour(hour_start)
    end = hour_start + timedelta(hours=1)
    acc: dict[object, _Acc] = {}
    rows = (
        CheckResult.objects.filter(checked_at__gte=hour_start, checked_at__lt=end)
        .values_list("monitor_id", "organization_id", "outcome", "response_time_ms")
        .iterator(chunk_size=10_000)
    )
    for monitor_id, org_id, outcome, ms in rows:
        bucket = acc.get(monitor_id)
        if bucket is None:
            bucket = acc[monitor_id] = _Acc(org_id)
        # Latency of failed checks (timeouts, refusals) is not the service's latency.
        bucket.add(outcome, ms if outcome in ("up", "degraded") else None)
    _store(Granularity.HOUR, hour_start, acc)
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
        for key in ("up", "degraded", "down", "inconclusive"):
            a.counts[key] += getattr(r, key)
        for key, count in r.histogram.items():
            a.hist[key] += count
        a.lat_count += r.latency_count
        a.lat_sum += r.latency_sum_ms
        if r.latency_min_ms is not None:
            a.lat_min = r.latency_min_ms if a.lat_min is None else min(a.lat_min, r.latency_min_ms)
        if r.latency_max_ms is not None:
            a.lat_max = r.latency_max_ms if a.lat_max is None else max(a.lat_max, r.latency_max_ms)
    _store(Granularity.DAY, day_start, acc)
    return len(acc)


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


WINDOWS = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}


def uptime(*, monitor: Monitor, now: datetime | None = None) -> dict[str, dict]:
    """Uptime and latency over 24 h / 7 d / 30 d / 90 d from hourly rollups, plus the
    current hour from raw results (at most an hour of one monitor's rows, via its index).

    Uptime counts degraded as up and leaves inconclusive results out; null without data.
    """
    now = now or timezone.now()
    current = _hour(now)
    live = _Acc(monitor.organization_id)
    for outcome, ms in CheckResult.objects.filter(
        monitor=monitor, checked_at__gte=current
    ).values_list("outcome", "response_time_ms"):
        live.add(outcome, ms if outcome in ("up", "degraded") else None)
    rollups = list(
        ResultRollup.objects.filter(
            monitor=monitor,
            granularity=Granularity.HOUR,
            bucket_start__gte=current - WINDOWS["90d"],
            bucket_start__lt=current,
        ).values_list("bucket_start", "up", "degraded", "down", "histogram")
    )
    out = {}
    for name, span in WINDOWS.items():
        since = now - span
        up = live.counts["up"] + live.counts["degraded"]
        down = live.counts["down"]
        hists = [dict(live.hist)]
        for start, r_up, r_degraded, r_down, hist in rollups:
            if start >= _hour(since):
                up += r_up + r_degraded
                down += r_down
                hists.append(hist)
        merged = merge(hists)
        out[name] = {
            "uptime_pct": round(100 * up / (up + down), 4) if up + down else None,
            "checks": up + down,
            "p50_ms": percentile(merged, 0.5),
            "p95_ms": percentile(merged, 0.95),
            "p99_ms": percentile(merged, 0.99),
        }
    return out


def prune_results(
    *, now: datetime | None = None, batch: int = 10_000, max_batches: int = 100
) -> int:
    """Delete raw results (and pings, samples) older than each organization's plan retention.

    Bounded batches keep each delete short so it never blocks inserts for long.
    """
    from apps.monitors.models import HeartbeatPing, MetricSample
    from apps.plans.models import Limit
    from apps.plans.selectors import entitlements_for
    from apps.tenants.models import Organization

    now = now or timezone.now()
    by_days: dict[int, list] = defaultdict(list)
    for org in Organization.objects.select_related("plan"):
        days = entitlements_for(org).limit(Limit.RETENTION_DAYS)
        if days is not None:
            by_days[days].append(org.pk)
    deleted = 0
    for days, org_ids in by_days.items():
        cutoff = now - timedelta(days=days)
        for model, field in (
            (CheckResult, "checked_at"),
            (HeartbeatPing, "received_at"),
            (MetricSample, "ts"),
        ):
            for _ in range(max_batches):
                ids = list(
                    model.objects.filter(
                        Q(organization_id__in=org_ids), **{f"{field}__lt": cutoff}
                    ).values_list("pk", flat=True)[:batch]
                )
                if not ids:
                    break
                deleted += model.objects.filter(pk__in=ids).delete()[0]
    return deleted
