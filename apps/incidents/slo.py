"""The slo_burn rule: open an incident when a monitor burns its error budget too fast, resolve
it when the burning stops (apps.monitors.slo has the arithmetic and the reads).

Fast burn (14.4x over 1 h and 5 min) opens at the rule's severity (critical by default); slow
burn alone (6x over 6 h and 30 min) at warning. The title and the cause carry the budget left
over the monitor's SLO window and the hours until it runs out at the last hour's rate, so the
notification says how urgent it is. Once open, the incident stays until neither condition
holds; a burn that turns from slow to fast is folded into it (seen again), not opened twice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.incidents import opening
from apps.incidents.machine import Context, openings_for, recovery_notifies
from apps.incidents.models import OPEN_STATUSES, Incident, RuleKind, Severity
from apps.incidents.rules import rules_for_orgs
from apps.monitors import selectors as monitor_reads
from apps.monitors.models import Monitor, MonitorStatus

logger = logging.getLogger(__name__)


def _describe(
    monitor: Monitor, burn: monitor_reads.Burn, budget: monitor_reads.Budget
) -> tuple[str, dict]:
    fast = burn.fast
    rate_window = "1h" if fast else "6h"
    rate = burn.rate(rate_window) or 0
    hours = budget.hours_to_exhaustion(burn.rate("1h"))
    left = f"{budget.left_pct:g}% of its {budget.window_days}-day error budget left"
    runs_out = "" if hours is None else f", gone in {hours:g} h at the last hour's rate"
    speed = "fast" if fast else "slow"
    title = (
        f"{monitor.name} burns its error budget {rate:.1f}x too fast ({speed}, "
        f"{rate_window}): {left}{runs_out}"
    )
    cause = {
        "rule": RuleKind.SLO_BURN,
        "burn": speed,
        "target_pct": burn.target_pct,
        "window_days": budget.window_days,
        "burn_rates": burn.rates(),
        "budget_left_pct": budget.left_pct,
        "hours_to_exhaustion": hours,
    }
    return title, cause


def burn_evaluation(*, now: datetime) -> tuple[list[Monitor], dict[Any, monitor_reads.Burn], dict]:
    """The monitors that can burn or have an slo_burn incident open, their burn rates, and
    those open incidents by monitor id: what one sweep decides on."""
    open_by_monitor = {
        i.monitor_id: i
        for i in Incident.objects.filter(rule=RuleKind.SLO_BURN, status__in=OPEN_STATUSES)
    }
    candidates = monitor_reads.slo_burning_candidates(now=now) | set(open_by_monitor)
    if not candidates:
        return [], {}, open_by_monitor
    monitors = list(
        Monitor.objects.filter(pk__in=list(candidates)).select_related("organization__plan")
    )
    burns = monitor_reads.slo_burns(
        monitors=monitors, now=now, windows=monitor_reads.SLO_SHORT_WINDOWS
    )
    slow_ones = [m for m in monitors if m.pk in burns and burns[m.pk].needs_6h]
    for pk, longer in monitor_reads.slo_burns(monitors=slow_ones, now=now, windows=("6h",)).items():
        burns[pk] = burns[pk].with_windows(longer)
    return monitors, burns, open_by_monitor


def slo_burn_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Open slo_burn incidents for monitors burning fast or slow, resolve those that stopped."""
    now = now or timezone.now()
    monitors, burns, open_by_monitor = burn_evaluation(now=now)
    if not monitors:
        return {"opened": 0, "resolved": 0, "evaluated": 0}
    rulesets = rules_for_orgs({m.organization_id for m in monitors})
    stopped, burning = [], []
    for monitor in monitors:
        burn = burns.get(monitor.pk)
        is_burning = burn is not None and (burn.fast or burn.slow)
        rule = rulesets[monitor.organization_id][RuleKind.SLO_BURN]
        current = open_by_monitor.get(monitor.pk)
        if current is not None and (not is_burning or not rule.enabled):
            note = "error budget burn back under the alerting rates"
            stopped.append(
                (
                    current,
                    recovery_notifies(current, rulesets[monitor.organization_id], None),
                    {
                        "recovery": True,
                        "note": note if rule.enabled else "rule disabled",
                        "burn_rates": burn.rates() if burn else {},
                    },
                )
            )
        elif (
            is_burning
            and rule.enabled
            and not monitor.paused
            and monitor.status != MonitorStatus.MAINTENANCE
        ):
            burning.append(monitor)
    budgets = monitor_reads.slo_budgets(monitors=burning, now=now)
    opened = 0
    with transaction.atomic():
        resolved = len(opening.incidents_resolve_many(stopped, at=now))
        if burning:
            ctx = Context.for_monitors(burning, now, now)
            items: list[tuple[Monitor, str, str, datetime, dict[str, Any]]] = []
            for monitor in burning:
                title, cause = _describe(monitor, burns[monitor.pk], budgets[monitor.pk])
                items.append((monitor, RuleKind.SLO_BURN, title, now, cause))
            openings = openings_for(items, ctx)
            for o in openings:
                if o.cause["burn"] == "slow":
                    o.severity = Severity.WARNING
            results = opening.incidents_open_many(openings)
            opened = sum(1 for _, was_opened in results if was_opened)
    if opened or resolved:
        logger.info("slo burn incidents", extra={"opened": opened, "resolved": resolved})
    return {"opened": opened, "resolved": resolved, "evaluated": len(monitors)}
