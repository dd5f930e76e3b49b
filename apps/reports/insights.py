"""Trends over the last 30 days and what they suggest: response time (hourly rollups) and the
cpu / memory / error-rate samples ingested for the monitor's source (hourly means).

Each series gets an ordinary least-squares line against time in days, its R^2, and a 95 %
confidence interval of the slope (Student's t with n - 2 degrees of freedom). A trend counts
as real when that interval excludes zero; a forecast says when the line crosses the
threshold if it holds.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Avg
from django.db.models.functions import TruncHour
from django.utils import timezone

from apps.monitors.models import Granularity, MetricSample, Monitor, MonitorKind, ResultRollup

WINDOW = timedelta(days=30)
MIN_POINTS = 24
MIN_SPAN_DAYS = 3.0
HORIZON_DAYS = 14
# Thresholds for ingested metrics (percentages); response time uses the monitor's expected
# response time, else the plan's SLA response target.
METRIC_THRESHOLDS = {"cpu": 80.0, "memory": 85.0, "error_rate": 5.0}
LOW_USE_PCT = 30.0

# Two-sided 97.5 % quantiles of Student's t for small samples; 1.96 beyond.
_T = {
    1: 12.71,
    2: 4.30,
    3: 3.18,
    4: 2.78,
    5: 2.57,
    6: 2.45,
    7: 2.36,
    8: 2.31,
    9: 2.26,
    10: 2.23,
    12: 2.18,
    15: 2.13,
    20: 2.09,
    25: 2.06,
    30: 2.04,
}


def _t(df: int) -> float:
    if df > 30:
        return 1.96
    return _T[max(k for k in _T if k <= df)]


def fit(points: list[tuple[datetime, float]], *, origin: datetime) -> dict[str, Any] | None:
    """Least squares of value on days since `origin`; None with fewer than two distinct x."""
    n = len(points)
    if n < 3:
        return None
    xs = [(t - origin).total_seconds() / 86400 for t, _ in points]
    ys = [v for _, v in points]
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    intercept = my - slope * mx
    ss_res = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    ss_tot = sum((y - my) ** 2 for y in ys)
    r2 = 1 - ss_res / ss_tot if ss_tot > 0 else 1.0
    se = math.sqrt(ss_res / (n - 2) / sxx) if n > 2 else float("inf")
    half = _t(n - 2) * se
    return {
        "points": n,
        "span_days": round(max(xs) - min(xs), 2),
        "slope_per_day": slope,
        "intercept": intercept,
        "r2": round(r2, 4),
        "slope_ci95": [slope - half, slope + half],
        "x_last": max(xs),
    }


def _series(name: str, unit: str, points, threshold: float | None, now: datetime) -> dict:
    origin = now - WINDOW
    out: dict[str, Any] = {
        "metric": name,
        "unit": unit,
        "points": len(points),
        "threshold": threshold,
    }
    f = fit(points, origin=origin)
    if f is None or f["points"] < MIN_POINTS or f["span_days"] < MIN_SPAN_DAYS:
        out.update(
            enough_data=False,
            reason=f"Too little data to judge: {len(points)} hourly points; at least "
            f"{MIN_POINTS} over {MIN_SPAN_DAYS:g} days are needed.",
        )
        return out
    slope, (lo, hi) = f["slope_per_day"], f["slope_ci95"]
    current = f["intercept"] + slope * f["x_last"]
    direction = "rising" if lo > 0 else "falling" if hi < 0 else "flat"
    out.update(
        enough_data=True,
        current=round(current, 3),
        slope_per_day=round(slope, 5),
        slope_ci95=[round(lo, 5), round(hi, 5)],
        r2=f["r2"],
        trend=direction,
        forecast=None,
    )
    if threshold is not None:
        if current >= threshold:
            out["forecast"] = {"crosses_at": None, "already_above": True}
        elif direction == "rising":
            days = (threshold - f["intercept"]) / slope - f["x_last"]
            out["forecast"] = {
                "crosses_at": (now + timedelta(days=days)).isoformat(),
                "in_days": round(days, 2),
                "already_above": False,
            }
    return out


def _response_points(monitor: Monitor, since: datetime) -> list[tuple[datetime, float]]:
    rows = ResultRollup.objects.filter(
        monitor=monitor, granularity=Granularity.HOUR, bucket_start__gte=since
    ).values_list("bucket_start", "latency_sum_ms", "latency_count")
    return sorted((at, total / n) for at, total, n in rows if n)


def metric_source(monitor: Monitor) -> str:
    """Samples are matched by source: a metric monitor's configured source, else the
    monitor's slug (agents report with `source` = the slug)."""
    if monitor.kind == MonitorKind.METRIC:
        return (monitor.config or {}).get("source") or monitor.slug
    return monitor.slug


def _metric_points(monitor: Monitor, since: datetime) -> dict[str, list]:
    # Hourly means in the database: a 10-second agent sends 260k samples a month per metric.
    rows = (
        MetricSample.objects.filter(
            organization_id=monitor.organization_id,
            source=metric_source(monitor),
            name__in=list(METRIC_THRESHOLDS),
            ts__gte=since,
        )
        .annotate(hour=TruncHour("ts"))
        .values("name", "hour")
        .annotate(v=Avg("value"))
        .order_by("name", "hour")
    )
    out: dict[str, list] = {name: [] for name in METRIC_THRESHOLDS}
    for row in rows:
        out[row["name"]].append((row["hour"], row["v"]))
    return out


def monitor_insights(*, monitor: Monitor, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    since = now - WINDOW
    plan = monitor.organization.plan
    target_ms = float(monitor.expected_response_time_ms or plan.sla_response_ms)
    series = [_series("response_time", "ms", _response_points(monitor, since), target_ms, now)]
    for name, points in _metric_points(monitor, since).items():
        series.append(_series(name, "%", points, METRIC_THRESHOLDS[name], now))
    recommendation, reason = _recommend(series)
    return {
        "monitor": {"id": str(monitor.pk), "name": monitor.name, "source": metric_source(monitor)},
        "window": {"start": since.isoformat(), "end": now.isoformat()},
        "enough_data": any(s["enough_data"] for s in series),
        "trends": series,
        "recommendation": recommendation,
        "reason": reason,
    }


def _recommend(series: list[dict]) -> tuple[str, str]:
    judged = [s for s in series if s["enough_data"]]
    if not judged:
        return "maintain", "Too little data to judge any trend yet; keep the current capacity."
    for s in judged:
        f = s.get("forecast") or {}
        if f.get("already_above"):
            return (
                "scale_up",
                f"{s['metric']} is at {s['current']:g} {s['unit']}, above its threshold {s['threshold']:g}.",
            )
        if f.get("in_days") is not None and f["in_days"] <= HORIZON_DAYS:
            return "scale_up", (
                f"{s['metric']} is rising {s['slope_per_day']:g} {s['unit']}/day (R^2 {s['r2']:g}) "
                f"and crosses {s['threshold']:g} {s['unit']} in {f['in_days']:g} days if the trend holds."
            )
    usage = {s["metric"]: s for s in judged if s["metric"] in ("cpu", "memory")}
    if len(usage) == 2 and all(
        s["current"] < LOW_USE_PCT and s["trend"] != "rising" for s in usage.values()
    ):
        return "scale_down", (
            f"cpu ({usage['cpu']['current']:g} %) and memory ({usage['memory']['current']:g} %) "
            f"stay below {LOW_USE_PCT:g} % and are not rising."
        )
    rising = [s["metric"] for s in judged if s["trend"] == "rising"]
    if rising:
        return "maintain", (
            f"{', '.join(rising)} rising, but no threshold is crossed within {HORIZON_DAYS} days."
        )
    return "maintain", "No significant upward trend and every series is below its threshold."
