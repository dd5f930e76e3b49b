"""The SLA arithmetic, free of queries: tallies of rollup counts in, figures out.

Every formula here is the one docs/concepts/reports.md states; change both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import mean
from typing import Any

from apps.monitors.selectors import percentile

COUNTS = (
    "up",
    "degraded",
    "down",
    "inconclusive",
    "maint_up",
    "maint_degraded",
    "maint_down",
    "maint_inconclusive",
    "dependency_down",
)


@dataclass(frozen=True)
class Accounting:
    exclude_maintenance: bool = True
    degraded_counts_as_up: bool = True


@dataclass
class Tally:
    """Counts of results (and latency) of one monitor over some span, summed from rollups."""

    up: int = 0
    degraded: int = 0
    down: int = 0
    inconclusive: int = 0
    maint_up: int = 0
    maint_degraded: int = 0
    maint_down: int = 0
    maint_inconclusive: int = 0
    dependency_down: int = 0
    maintenance_seconds: float = 0.0
    latency_count: int = 0
    latency_sum_ms: float = 0.0
    latency_max_ms: float | None = None
    hist: dict[str, int] = field(default_factory=dict)

    def add(self, row: Any) -> None:
        """Add counts from a mapping (an aggregate row) or an object with the same names."""
        get = row.get if isinstance(row, dict) else lambda k, d=None: getattr(row, k, d)
        for key in COUNTS:
            setattr(self, key, getattr(self, key) + (get(key) or 0))
        self.maintenance_seconds += get("maintenance_seconds") or 0.0

    def add_latency(self, count: int, total: float, top: float | None, hist: dict) -> None:
        self.latency_count += count or 0
        self.latency_sum_ms += total or 0.0
        if top is not None:
            self.latency_max_ms = (
                top if self.latency_max_ms is None else max(self.latency_max_ms, top)
            )
        for key, n in hist.items():
            self.hist[key] = self.hist.get(key, 0) + n

    # --- what counts ---------------------------------------------------------------------

    def good_bad(self, acc: Accounting) -> tuple[int, int]:
        """(available, unavailable) results. Inconclusive results count neither way."""
        up, degraded, down = self.up, self.degraded, self.down
        if acc.exclude_maintenance:
            up, degraded, down = (
                up - self.maint_up,
                degraded - self.maint_degraded,
                down - self.maint_down,
            )
        if acc.degraded_counts_as_up:
            return up + degraded, down
        return up, down + degraded

    def results(self, acc: Accounting) -> int:
        total = self.up + self.degraded + self.down + self.inconclusive
        if acc.exclude_maintenance:
            total -= self.maint_up + self.maint_degraded + self.maint_down + self.maint_inconclusive
        return total

    def availability(self, acc: Accounting) -> float | None:
        good, bad = self.good_bad(acc)
        return 100.0 * good / (good + bad) if good + bad else None

    def unavailability(self, acc: Accounting) -> float | None:
        a = self.availability(acc)
        return None if a is None else (100.0 - a) / 100.0

    def error_rate(self, acc: Accounting) -> float | None:
        """Failed or inconclusive results over all results, in %."""
        total = self.results(acc)
        if not total:
            return None
        down = self.down - (self.maint_down if acc.exclude_maintenance else 0)
        inconclusive = self.inconclusive - (
            self.maint_inconclusive if acc.exclude_maintenance else 0
        )
        return 100.0 * (down + inconclusive) / total

    def latency(self) -> dict[str, float | None]:
        avg = self.latency_sum_ms / self.latency_count if self.latency_count else None
        return {
            "avg": _r(avg),
            "p50": percentile(self.hist, 0.5),
            "p95": percentile(self.hist, 0.95),
            "p99": percentile(self.hist, 0.99),
            "max": _r(self.latency_max_ms),
        }


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


# --- error budget and burn ----------------------------------------------------------------


def error_budget(
    *,
    target_pct: float,
    unavailability: float | None,
    eligible_seconds: float,
    observed_seconds: float,
) -> dict[str, float | None]:
    """The budget of the whole period, what the observed part of it spent, what is left.

    allowed = (1 - target) x eligible seconds of the period (maintenance and the time before
    the first check left out); consumed = unavailability so far x observed seconds.
    """
    allowed = (1 - target_pct / 100.0) * max(eligible_seconds, 0.0)
    consumed = (unavailability or 0.0) * max(observed_seconds, 0.0)
    remaining = allowed - consumed
    return {
        "allowed_seconds": round(allowed, 1),
        "consumed_seconds": round(consumed, 1),
        "remaining_seconds": round(remaining, 1),
        "remaining_pct": round(100.0 * remaining / allowed, 2) if allowed > 0 else None,
    }


def burn_rate(unavailability: float | None, target_pct: float) -> float | None:
    """How fast the budget burns: 1.0 spends exactly the whole budget over the period."""
    if unavailability is None or target_pct >= 100:
        return None
    return round(unavailability / (1 - target_pct / 100.0), 3)


def exhaustion_warning(
    *, budget: dict, burn_6h: float | None, target_pct: float, now: datetime, end: datetime
) -> str | None:
    """A sentence when, at the last 6 hours' burn rate, the budget runs out before `end`."""
    if now >= end:
        return None
    remaining = budget["remaining_seconds"]
    if remaining is not None and remaining <= 0 and budget["allowed_seconds"] > 0:
        return "The error budget for this period is exhausted."
    if not burn_6h:
        return None
    # Unavailable seconds spent per wall-clock second at that rate.
    spend = burn_6h * (1 - target_pct / 100.0)
    runs_out = now + timedelta(seconds=remaining / spend)
    if runs_out < end:
        return (
            f"At the last 6 hours' burn rate ({burn_6h:g}x) the error budget runs out at "
            f"{runs_out:%Y-%m-%d %H:%M} UTC, before the period ends."
        )
    return None


# --- health score -------------------------------------------------------------------------

WEIGHTS = {"availability": 0.6, "latency": 0.25, "errors": 0.15}


def health_score(
    *,
    availability: float | None,
    target_pct: float,
    p95_ms: float | None,
    target_ms: float,
    error_rate: float | None,
    target_error_pct: float,
) -> int | None:
    """0-100. Availability: 1 at 100 %, 0.9 having spent exactly the budget, 0 at ten budgets.
    Latency: 1 while p95 <= target, else target / p95. Errors: 1 - error rate / (2 x the
    plan's error target), floored at 0. Weighted 0.6 / 0.25 / 0.15 over the parts that have
    data; None without any."""
    parts: dict[str, float] = {}
    if availability is not None:
        budget = max(100.0 - target_pct, 1e-9)
        parts["availability"] = _clamp(1 - (100.0 - availability) / (10 * budget))
    if p95_ms is not None and target_ms:
        parts["latency"] = 1.0 if p95_ms <= target_ms else _clamp(target_ms / p95_ms)
    if error_rate is not None and target_error_pct:
        parts["errors"] = _clamp(1 - error_rate / (2 * target_error_pct))
    if not parts:
        return None
    weight = sum(WEIGHTS[k] for k in parts)
    return round(100 * sum(WEIGHTS[k] * v for k, v in parts.items()) / weight)


def _clamp(value: float) -> float:
    return max(0.0, min(1.0, value))


# --- incidents ----------------------------------------------------------------------------

FALSE_POSITIVE_HINT_PCT = 20.0


def incident_figures(incidents: list[dict], *, interval_seconds: int, recovery_threshold: int):
    """Count, MTTA, MTTR and the false-positive share of a monitor's incidents.

    A false positive resolved within one recovery check (the recovery threshold's checks,
    plus half an interval of scheduling slack) and was never acknowledged.
    """
    acks = [
        (i["acknowledged_at"] - i["opened_at"]).total_seconds()
        for i in incidents
        if i["acknowledged_at"]
    ]
    fixes = [
        (i["resolved_at"] - i["opened_at"]).total_seconds() for i in incidents if i["resolved_at"]
    ]
    quick = (recovery_threshold + 0.5) * interval_seconds
    false_positives = sum(
        1
        for i in incidents
        if i["resolved_at"]
        and not i["acknowledged_at"]
        and (i["resolved_at"] - i["opened_at"]).total_seconds() <= quick
    )
    resolved = len(fixes)
    rate = 100.0 * false_positives / resolved if resolved else None
    return {
        "count": len(incidents),
        "mtta_seconds": _r(mean(acks), 1) if acks else None,
        "mttr_seconds": _r(mean(fixes), 1) if fixes else None,
        "false_positives": false_positives,
        "false_positive_rate_pct": _r(rate, 2),
    }


def tuning_hint(figures: dict, *, failure_threshold: int, timeout_seconds: float) -> str | None:
    rate = figures["false_positive_rate_pct"]
    if rate is None or rate < FALSE_POSITIVE_HINT_PCT or figures["false_positives"] < 2:
        return None
    return (
        f"{figures['false_positives']} incidents cleared at the first recovery check and nobody "
        f"acknowledged them: the thresholds look too tight. Try failure_threshold "
        f"{failure_threshold + 1} (now {failure_threshold}) or a longer timeout "
        f"(now {timeout_seconds:g} s)."
    )


def longest_outage(
    status_at_start: str | None, changes: list[tuple[datetime, str]], start: datetime, end: datetime
) -> float:
    """Longest span in `down` within [start, end), in seconds, from the status-change log."""
    longest, since = 0.0, start if status_at_start == "down" else None
    for at, new in changes:
        if new == "down" and since is None:
            since = at
        elif new != "down" and since is not None:
            longest = max(longest, (at - since).total_seconds())
            since = None
    if since is not None:
        longest = max(longest, (end - since).total_seconds())
    return longest
