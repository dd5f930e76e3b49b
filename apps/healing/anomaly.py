"""The anomaly model: a robust seasonal baseline and two detectors, in plain Python.

Given a series of (time, value) points (a monitor's latency, or an ingested metric):

1. **Training** is everything older than the evaluation window (the last `eval_hours`).
   Its baseline is the median and MAD (median absolute deviation, x1.4826 so it estimates a
   standard deviation for normal noise) per *hour of week* when training spans two weeks, per
   *hour of day* when it spans two days, otherwise one global median/MAD. Medians and MADs
   ignore outliers (an earlier incident does not poison the baseline), and the seasonal key
   means "slow every weekday at 09:00" is normal, not an anomaly.
2. Each evaluation point gets a robust score z = (value - bucket median) / bucket scale.
   The scale is floored (half the global scale, 1% of the median) so a perfectly flat
   history cannot turn one millisecond of jitter into a huge z.
3. **Step change**: the median z of the most recent points exceeds `step_z` (default 4).
4. **Slow drift**: a one-sided CUSUM over the evaluation window, S = max(0, S + z - k) with
   k = 0.5, crosses h = 10. Each point only has to sit half a standard deviation high for
   the sum to grow, so a trend too slow for any single threshold accumulates; under pure
   noise the expected time to a false alarm is far beyond the window.

Too little data (fewer than `min_training` training points or fewer than `min_recent` recent
ones) is not an anomaly: it is `usable=False` with the reason, and the engine falls back to
the rules and says so. Everything is deterministic: same input, same verdict.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class AnomalyVerdict:
    usable: bool
    anomalous: bool = False
    kind: str = ""  # "latency_step" | "latency_drift" (prefixed by the series name)
    reason: str = ""  # why it is (not) anomalous, or why the model could not be used
    seasonality: str = ""  # "hour_of_week" | "hour_of_day" | "none"
    score: float = 0.0  # the step's median z, or the CUSUM peak
    baseline: float | None = None
    recent: float | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "usable": self.usable,
            "anomalous": self.anomalous,
            "kind": self.kind,
            "reason": self.reason,
            "seasonality": self.seasonality,
            "score": round(self.score, 3),
            "baseline": None if self.baseline is None else round(self.baseline, 3),
            "recent": None if self.recent is None else round(self.recent, 3),
            **self.facts,
        }


def _mad(values: list[float], center: float) -> float:
    return statistics.median([abs(v - center) for v in values]) * MAD_TO_SIGMA


def _key(ts: datetime, seasonality: str) -> int:
    if seasonality == "hour_of_week":
        return ts.weekday() * 24 + ts.hour
    if seasonality == "hour_of_day":
        return ts.hour
    return 0


def detect(
    points: list[tuple[datetime, float]],
    *,
    now: datetime,
    name: str = "latency",
    eval_hours: float = 6,
    recent_minutes: float = 30,
    min_training: int = 48,
    min_recent: int = 3,
    step_z: float = 4.0,
    cusum_k: float = 0.5,
    cusum_h: float = 10.0,
    min_relative_change: float = 0.2,
) -> AnomalyVerdict:
    """Judge the newest part of `points` against their own history (see the module doc)."""
    points = sorted(p for p in points if p[1] is not None and p[0] <= now)
    eval_start = now - timedelta(hours=eval_hours)
    training = [(t, v) for t, v in points if t < eval_start]
    evaluation = [(t, v) for t, v in points if t >= eval_start]
    recent = [v for t, v in evaluation if t >= now - timedelta(minutes=recent_minutes)]
    if len(training) < min_training:
        return AnomalyVerdict(
            usable=False,
            reason=f"only {len(training)} {name} points of history before the last "
            f"{eval_hours:g} h (needs {min_training})",
        )
    if len(recent) < min_recent:
        return AnomalyVerdict(
            usable=False,
            reason=f"only {len(recent)} {name} points in the last {recent_minutes:g} min "
            f"(needs {min_recent})",
        )

    span = training[-1][0] - training[0][0]
    seasonality = (
        "hour_of_week"
        if span >= timedelta(days=14)
        else "hour_of_day"
        if span >= timedelta(days=2)
        else "none"
    )
    values = [v for _, v in training]
    global_median = statistics.median(values)
    global_scale = _mad(values, global_median)
    floor = max(global_scale * 0.5, abs(global_median) * 0.01, 1e-9)
    buckets: dict[int, list[float]] = {}
    for t, v in training:
        buckets.setdefault(_key(t, seasonality), []).append(v)
    stats: dict[int, tuple[float, float]] = {}
    for key, vals in buckets.items():
        if len(vals) >= 3:
            center = statistics.median(vals)
            stats[key] = (center, max(_mad(vals, center), floor))

    def expected(ts: datetime) -> tuple[float, float]:
        return stats.get(_key(ts, seasonality), (global_median, max(global_scale, floor)))

    zs: list[float] = []
    residual_ratio: list[float] = []
    for t, v in evaluation:
        center, scale = expected(t)
        zs.append((v - center) / scale)
        residual_ratio.append((v - center) / abs(center) if center else 0.0)
    recent_z = zs[-len(recent) :]
    recent_ratio = residual_ratio[-len(recent) :]
    step = statistics.median(recent_z)
    ratio = statistics.median(recent_ratio)
    baseline = statistics.median([expected(t)[0] for t, _ in evaluation[-len(recent) :]])
    recent_median = statistics.median(recent)
    facts = {"training_points": len(training), "evaluation_points": len(evaluation)}
    # A step must also be a meaningful change in absolute terms (20% by default): a tight
    # baseline makes a 3 ms wobble a large z that nobody should be woken for.
    if step > step_z and ratio > min_relative_change:
        return AnomalyVerdict(
            usable=True,
            anomalous=True,
            kind=f"{name}_step",
            reason=f"{name} stepped up: the last {len(recent)} points have median "
            f"{recent_median:.1f} against a {seasonality.replace('_', '-')} baseline of "
            f"{baseline:.1f} (robust z {step:.1f} > {step_z:g})",
            seasonality=seasonality,
            score=step,
            baseline=baseline,
            recent=recent_median,
            facts=facts,
        )
    s = peak = 0.0
    for z in zs:
        s = max(0.0, s + z - cusum_k)
        peak = max(peak, s)
    mean_ratio = statistics.fmean(residual_ratio) if residual_ratio else 0.0
    if peak > cusum_h and mean_ratio > min_relative_change / 2:
        return AnomalyVerdict(
            usable=True,
            anomalous=True,
            kind=f"{name}_drift",
            reason=f"{name} drifted up over the last {eval_hours:g} h: values sit "
            f"{mean_ratio:.0%} above the {seasonality.replace('_', '-')} baseline on average "
            f"(CUSUM {peak:.1f} > {cusum_h:g})",
            seasonality=seasonality,
            score=peak,
            baseline=baseline,
            recent=recent_median,
            facts=facts,
        )
    return AnomalyVerdict(
        usable=True,
        anomalous=False,
        reason=f"{name} within its {seasonality.replace('_', '-')} baseline "
        f"(recent median {recent_median:.1f}, expected {baseline:.1f})",
        seasonality=seasonality,
        score=max(step, peak),
        baseline=baseline,
        recent=recent_median,
        facts=facts,
    )
