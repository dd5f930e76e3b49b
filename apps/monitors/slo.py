"""Service level objectives: how fast each monitor burns its error budget (reads only).

A monitor's objective is a share of decisive checks (up, degraded or down; inconclusive ones
say nothing about the target) that must pass over a rolling window of 28 or 30 days: its own
`slo_target_pct`, or its plan's availability target. The error budget is the share allowed to
fail, 1 - target; a **burn rate** of 1 spends exactly that over the window, 14.4 spends 2 % of a
30-day budget in one hour.

The slo_burn rule (apps.incidents.slo) alerts on two multiwindow conditions, as the SRE
workbook sets them out: a fast burn (14.4x over both the last hour and the last 5 minutes)
and a slow burn (6x over both the last 6 hours and the last 30 minutes). The short window makes
an alert stop soon after the burning stops; the long one keeps a blip from paging anyone.

Reading is bounded by what can alert: only monitors with a failed check in the last 30 minutes
(both conditions need one) are read, plus any the caller names (those with an open slo_burn
incident, to resolve them); and only over the last hour, except the few whose verdict hangs on
the 6-hour window (burning 6x over 30 minutes but not fast: `Burn.needs_6h`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, F, Q, Sum

from apps.monitors.checkers.base import Outcome
from apps.monitors.models import CheckResult, Granularity, Monitor, ResultRollup

# Burn-rate windows, in seconds.
WINDOWS = {"5m": 300, "30m": 1800, "1h": 3600, "6h": 21_600}
FAST_BURN = 14.4  # over 1h and 5m
SLOW_BURN = 6.0  # over 6h and 30m
# Fewer decisive checks than this in a long window say too little to page anyone on.
MIN_CHECKS = 5
DECISIVE = (Outcome.UP, Outcome.DEGRADED, Outcome.DOWN)


@dataclass(frozen=True)
class Burn:
    """One monitor's error ratios and burn rates over the four windows."""

    monitor_id: Any
    target_pct: float
    failed: dict[str, int]
    decisive: dict[str, int]

    @property
    def budget(self) -> float:
        """The share of checks allowed to fail."""
        return 1 - self.target_pct / 100

    def error_ratio(self, window: str) -> float | None:
        checks = self.decisive.get(window)
        return self.failed[window] / checks if checks else None

    def rate(self, window: str) -> float | None:
        ratio = self.error_ratio(window)
        return None if ratio is None else ratio / self.budget

    def _above(self, long: str, short: str, factor: float) -> bool:
        if self.decisive.get(long, 0) < MIN_CHECKS:
            return False
        return all((self.rate(w) or 0) >= factor for w in (long, short))

    @property
    def fast(self) -> bool:
        return self._above("1h", "5m", FAST_BURN)

    @property
    def slow(self) -> bool:
        return self._above("6h", "30m", SLOW_BURN)

    @property
    def needs_6h(self) -> bool:
        """Whether the slow condition hangs on the 6-hour window: not burning fast (which
        alerts anyway) and burning 6x over the last 30 minutes (without which it is false)."""
        return not self.fast and (self.rate("30m") or 0) >= SLOW_BURN

    def with_windows(self, other: Burn) -> Burn:
        return Burn(
            monitor_id=self.monitor_id,
            target_pct=self.target_pct,
            failed={**self.failed, **other.failed},
            decisive={**self.decisive, **other.decisive},
        )

    def rates(self) -> dict[str, float | None]:
        """Rates per window; None where the window was not read or had no decisive check."""
        return {w: None if (r := self.rate(w)) is None else round(r, 2) for w in WINDOWS}


def target_of(monitor: Monitor) -> float:
    """The monitor's availability objective in percent (its own, or its plan's)."""
    if monitor.slo_target_pct is not None:
        return float(monitor.slo_target_pct)
    return float(monitor.organization.plan.sla_availability_pct)


def slo_burning_candidates(*, now: datetime) -> set[Any]:
    """Monitors with a failed check in the last 30 minutes: the only ones that can burn."""
    since = now - timedelta(seconds=WINDOWS["30m"])
    return set(
        CheckResult.objects.filter(checked_at__gt=since, checked_at__lte=now, outcome=Outcome.DOWN)
        .order_by()
        .values_list("monitor_id", flat=True)
        .distinct()
    )


SLO_SHORT_WINDOWS = ("5m", "30m", "1h")


def slo_burns(
    *, monitors: Iterable[Monitor], now: datetime, windows: Iterable[str] = tuple(WINDOWS)
) -> dict[Any, Burn]:
    """Burn rates of `monitors` over `windows`, from their raw results in one query.
    `monitors` need `organization__plan` selected for their targets."""
    by_id = {m.pk: m for m in monitors}
    windows = tuple(windows)
    if not by_id:
        return {}
    counts: dict[str, Any] = {}
    for name in windows:
        seconds = WINDOWS[name]
        since = Q(checked_at__gt=now - timedelta(seconds=seconds))
        counts[f"d_{name}"] = Count("pk", filter=since & Q(outcome__in=DECISIVE))
        counts[f"f_{name}"] = Count("pk", filter=since & Q(outcome=Outcome.DOWN))
    rows = (
        CheckResult.objects.filter(
            monitor_id__in=list(by_id),
            checked_at__gt=now - timedelta(seconds=max(WINDOWS[w] for w in windows)),
            checked_at__lte=now,
        )
        .values("monitor_id")
        .annotate(**counts)
        .order_by()
    )
    out = {}
    for row in rows:
        monitor = by_id[row["monitor_id"]]
        out[monitor.pk] = Burn(
            monitor_id=monitor.pk,
            target_pct=target_of(monitor),
            failed={w: row[f"f_{w}"] for w in windows},
            decisive={w: row[f"d_{w}"] for w in windows},
        )
    return out


@dataclass(frozen=True)
class Budget:
    """What is left of a monitor's error budget over its SLO window."""

    target_pct: float
    window_days: int
    decisive: int
    failed: int

    @property
    def spent(self) -> float:
        """The share of the window's budget spent so far (may exceed 1)."""
        if not self.decisive:
            return 0.0
        return (self.failed / self.decisive) / (1 - self.target_pct / 100)

    @property
    def left_pct(self) -> float:
        return round(100 * (1 - self.spent), 2)

    def hours_to_exhaustion(self, burn_rate: float | None) -> float | None:
        """At `burn_rate` (1 spends the budget over the whole window), hours until nothing is
        left; 0 when it is gone already, None when it is not burning."""
        if self.spent >= 1:
            return 0.0
        if not burn_rate:
            return None
        return round((1 - self.spent) * self.window_days * 24 / burn_rate, 1)


def slo_budgets(*, monitors: Iterable[Monitor], now: datetime) -> dict[Any, Budget]:
    """Each monitor's budget over its rolling window, from the daily rollups of the whole days
    and the hourly rollups since (checks made in declared maintenance left out, as in the SLA
    reports). Two queries whatever the number of monitors."""
    by_id = {m.pk: m for m in monitors}
    if not by_id:
        return {}
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    longest = max(m.slo_window_days for m in by_id.values())
    sums = {
        "failed": Sum(F("down") - F("maint_down")),
        "decisive": Sum(
            F("up")
            + F("degraded")
            + F("down")
            - F("maint_up")
            - F("maint_degraded")
            - F("maint_down")
        ),
    }
    spans = (
        (Granularity.DAY, today - timedelta(days=longest), today),
        (Granularity.HOUR, today, now),
    )
    seen: dict[Any, dict[str, int]] = {pk: {"failed": 0, "decisive": 0} for pk in by_id}
    for granularity, start, end in spans:
        rows = (
            ResultRollup.objects.filter(
                monitor_id__in=list(by_id),
                granularity=granularity,
                bucket_start__gte=start,
                bucket_start__lt=end,
            )
            .values("monitor_id", "bucket_start")
            .annotate(**sums)
            .order_by()
        )
        for row in rows:
            monitor = by_id[row["monitor_id"]]
            if row["bucket_start"] < today - timedelta(days=monitor.slo_window_days):
                continue  # a day outside this monitor's (shorter) window
            seen[monitor.pk]["failed"] += row["failed"] or 0
            seen[monitor.pk]["decisive"] += row["decisive"] or 0
    return {
        pk: Budget(
            target_pct=target_of(by_id[pk]),
            window_days=by_id[pk].slo_window_days,
            decisive=counts["decisive"],
            failed=counts["failed"],
        )
        for pk, counts in seen.items()
    }
