"""What only the clock can tell, run by the beat (apps.incidents.tasks): maintenance windows
starting and ending, flapping settling, slow responses and certificates clearing, uptime over
a window. Each sweep is idempotent and bounded by what is open or in force."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from apps.incidents import opening
from apps.incidents import rules as rule_defaults
from apps.incidents import windows as window_math
from apps.incidents.machine import (
    HEALTHY,
    NOT_FLIPS,
    Change,
    Context,
    apply_changes,
    enter_maintenance,
    openings_for,
    process_changes,
    recovery_notifies,
)
from apps.incidents.models import (
    OPEN_STATUSES,
    AlertRule,
    Incident,
    MaintenanceWindow,
    RuleKind,
    StatusChange,
    WindowKind,
)
from apps.incidents.rules import RuleSet, rules_for_orgs
from apps.monitors.models import Granularity, Monitor, MonitorStatus, Outcome, ResultRollup

logger = logging.getLogger(__name__)

# Fewer decisive checks than this in the window say too little about uptime to alert on.
LOW_UPTIME_MIN_CHECKS = 10


def _changes_within(monitor_id: object, at: datetime, seconds: int) -> int:
    return (
        StatusChange.objects.filter(
            monitor_id=monitor_id, at__gt=at - timedelta(seconds=seconds), at__lte=at
        )
        .exclude(new__in=NOT_FLIPS)
        .exclude(old__in=NOT_FLIPS)
        .count()
    )


# --- Maintenance ------------------------------------------------------------------------------


def _status_after_maintenance(monitor: Monitor) -> str:
    # The checks kept counting during the window (apps.monitors.state holds the status only).
    if monitor.consecutive_failures >= monitor.failure_threshold:
        return MonitorStatus.DOWN
    if monitor.consecutive_successes:
        return MonitorStatus.UP
    return MonitorStatus.UNKNOWN


def _tag_q(tag: str) -> Q:
    if connection.vendor == "postgresql":
        return Q(tags__contains=[tag])
    return Q(tags__icontains=f'"{tag}"')


def maintenance_sync(*, org_ids: set | None = None, now: datetime | None = None) -> dict[str, int]:
    """Put monitors covered by a maintenance window in force into `maintenance`, and take
    the others out (to the status their checks earned meanwhile, opening or resolving
    incidents as that status says). Idempotent; runs every 30 s and after window edits."""
    now = now or timezone.now()
    if org_ids is None:
        org_ids = set(
            MaintenanceWindow.objects.filter(kind=WindowKind.MAINTENANCE)
            .values_list("organization_id", flat=True)
            .distinct()
        )
    if not org_ids:
        return {"entered": 0, "left": 0}
    ctx = Context(org_ids, now, now)
    active = [
        w
        for ws in ctx.windows.values()
        for w in ws
        if w.kind == WindowKind.MAINTENANCE and window_math.is_active(w, now)
    ]
    covered = Q(pk__in=[])
    for w in active:
        scope = Q(organization_id=w.organization_id)
        if w.all_monitors:
            covered |= scope
            continue
        ids = [m.pk for m in w.monitors.all()]
        if ids:
            covered |= scope & Q(pk__in=ids)
        for tag in w.tags:
            covered |= scope & _tag_q(tag)
    with transaction.atomic():
        monitors = list(
            Monitor.objects.filter(paused=False)
            .filter(
                Q(organization_id__in=list(org_ids), status=MonitorStatus.MAINTENANCE) | covered
            )
            .order_by("pk")
            .select_for_update(of=("self",))
        )
        enter, leave = [], []
        for monitor in monitors:
            window = ctx.covering(monitor, now, WindowKind.MAINTENANCE)
            if window is not None and monitor.status != MonitorStatus.MAINTENANCE:
                enter.append((monitor, window, now))
            elif window is None and monitor.status == MonitorStatus.MAINTENANCE:
                leave.append(monitor)
        if enter:
            enter_maintenance(enter)
        changes = []
        for monitor in leave:
            new = _status_after_maintenance(monitor)
            Monitor.objects.filter(pk=monitor.pk).update(
                status=new, status_changed_at=now, updated_at=timezone.now()
            )
            monitor.status = new
            monitor.status_changed_at = now
            changes.append(
                Change(monitor, MonitorStatus.MAINTENANCE, new, now, None, "maintenance ended")
            )
        process_changes(changes)
    if enter or leave:
        logger.info("maintenance synced", extra={"entered": len(enter), "left": len(leave)})
    return {"entered": len(enter), "left": len(leave)}


# --- Sweeps -----------------------------------------------------------------------------------


def flapping_settle(*, now: datetime | None = None) -> int:
    """Resolve flapping incidents whose monitor settled (at most half the threshold of
    changes within the window: the gap stops a borderline monitor from sending a notice per
    extra flip), then bring its incidents in line with the status it settled on."""
    now = now or timezone.now()
    settled = 0
    flapping = list(
        Incident.objects.filter(rule=RuleKind.FLAPPING, status__in=OPEN_STATUSES).values_list(
            "pk", "monitor_id", "organization_id"
        )
    )
    rulesets = rules_for_orgs({org for _, _, org in flapping})
    for pk, monitor_id, org_id in flapping:
        rule = rulesets[org_id][RuleKind.FLAPPING]
        if (
            rule.enabled
            and _changes_within(monitor_id, now, rule.window_seconds) > rule.threshold // 2
        ):
            continue
        with transaction.atomic():
            # Monitor first, then incidents: the order the fold path takes its locks in.
            monitor = Monitor.objects.select_for_update(of=("self",)).filter(pk=monitor_id).first()
            incident = Incident.objects.filter(pk=pk).first()
            if monitor is None or incident is None:
                continue
            ctx = Context({org_id}, now, now)
            quiet = ctx.quiet(monitor, now) is not None
            opening.incidents_resolve_many(
                [
                    (
                        incident,
                        not quiet and not incident.suppressed,
                        {"note": f"settled: {monitor.name} is {monitor.status}", "settled": True},
                    )
                ],
                at=now,
            )
            if monitor.status == MonitorStatus.DOWN:
                apply_changes(
                    [Change(monitor, MonitorStatus.UNKNOWN, MonitorStatus.DOWN, now)], ctx
                )
            elif monitor.status in HEALTHY:
                apply_changes([Change(monitor, MonitorStatus.DOWN, monitor.status, now)], ctx)
        settled += 1
    return settled


def cleared_resolve(*, now: datetime | None = None) -> int:
    """Resolve high-response-time and certificate incidents whose monitor's latest result
    is back inside the rule (checked here rather than on every healthy result, so the hot
    path stays query-free)."""
    from apps.monitors.models import CheckResult

    now = now or timezone.now()
    open_ = list(
        Incident.objects.filter(
            rule__in=[RuleKind.HIGH_RESPONSE_TIME, RuleKind.CERTIFICATE_EXPIRY],
            status__in=OPEN_STATUSES,
        ).select_related("monitor")
    )
    if not open_:
        return 0
    ctx = Context({i.organization_id for i in open_}, now, now)
    cleared_items = []
    for incident in open_:
        monitor = incident.monitor
        last = CheckResult.objects.filter(monitor_id=monitor.pk).order_by("-checked_at").first()
        if last is None or last.checked_at <= incident.last_seen_at:
            continue
        ruleset = ctx.rules[incident.organization_id]
        r = ruleset[incident.rule]
        if incident.rule == RuleKind.HIGH_RESPONSE_TIME:
            limit = (monitor.expected_response_time_ms or 0) * r.threshold
            cleared = last.outcome == Outcome.UP and (
                not monitor.expected_response_time_ms or (last.response_time_ms or 0) <= limit
            )
        else:
            cleared = last.cert_expires_at is not None and last.cert_expires_at - now >= timedelta(
                days=r.threshold
            )
        if not r.enabled or cleared:
            cleared_items.append(
                (
                    incident,
                    recovery_notifies(incident, ruleset, ctx.quiet(monitor, now)),
                    {"recovery": True, "note": "cleared" if cleared else "rule disabled"},
                )
            )
    with transaction.atomic():
        return len(opening.incidents_resolve_many(cleared_items, at=now))


def low_uptime_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Open a low_uptime incident for monitors whose uptime over the rule's window (complete
    hours of ResultRollup, degraded counted as up, inconclusive and maintenance left out) is
    below the threshold, and resolve it once uptime is back at or above. One aggregate per
    window size."""
    now = now or timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    windows = {rule_defaults.DEFAULTS[RuleKind.LOW_UPTIME].window_seconds}
    windows |= {
        s
        for s in AlertRule.objects.filter(kind=RuleKind.LOW_UPTIME).values_list(
            "window_seconds", flat=True
        )
        if s
    }
    open_by_monitor = {
        i.monitor_id: i
        for i in Incident.objects.filter(rule=RuleKind.LOW_UPTIME, status__in=OPEN_STATUSES)
    }
    opened = resolved = 0
    rulesets: dict[Any, RuleSet] = {}
    for seconds in sorted(windows):
        rows = list(
            ResultRollup.objects.filter(
                granularity=Granularity.HOUR,
                bucket_start__gte=hour - timedelta(seconds=seconds),
                bucket_start__lt=hour,
            )
            .values("monitor_id", "organization_id")
            # Checks made inside a declared maintenance window do not count (as in the SLA
            # reports): the rollups count them apart in maint_*.
            .annotate(
                up=Sum(F("up") - F("maint_up")),
                degraded=Sum(F("degraded") - F("maint_degraded")),
                down=Sum(F("down") - F("maint_down")),
            )
        )
        rulesets.update(rules_for_orgs({r["organization_id"] for r in rows} - set(rulesets)))
        below, back = {}, []
        for row in rows:
            ruleset = rulesets[row["organization_id"]]
            r = ruleset[RuleKind.LOW_UPTIME]
            if r.window_seconds != seconds:
                continue
            healthy = row["up"] + row["degraded"]
            decisive = healthy + row["down"]
            pct = 100 * healthy / decisive if decisive else None
            current = open_by_monitor.get(row["monitor_id"])
            if current is not None and (not r.enabled or (pct is not None and pct >= r.threshold)):
                note = f"uptime back to {pct:.2f}%" if pct is not None else "rule disabled"
                back.append(
                    (
                        current,
                        recovery_notifies(current, ruleset, None),
                        {"recovery": True, "note": note},
                    )
                )
            elif r.enabled and decisive >= LOW_UPTIME_MIN_CHECKS and pct < r.threshold:
                below[row["monitor_id"]] = (pct, decisive)
        monitors = list(
            Monitor.objects.filter(pk__in=list(below), paused=False).exclude(
                status=MonitorStatus.MAINTENANCE
            )
        )
        with transaction.atomic():
            resolved += len(opening.incidents_resolve_many(back, at=now))
            if monitors:
                ctx = Context.for_monitors(monitors, now, now)
                items = []
                for m in monitors:
                    pct, decisive = below[m.pk]
                    threshold = ctx.rules[m.organization_id][RuleKind.LOW_UPTIME].threshold
                    title = f"{m.name} uptime {pct:.2f}% over {seconds // 3600} h"
                    cause = {
                        "rule": RuleKind.LOW_UPTIME,
                        "uptime_pct": round(pct, 4),
                        "checks": decisive,
                        "window_seconds": seconds,
                        "threshold": threshold,
                    }
                    items.append((m, RuleKind.LOW_UPTIME, title, now, cause))
                results = opening.incidents_open_many(openings_for(items, ctx))
                opened += sum(1 for _, was_opened in results if was_opened)
    return {"opened": opened, "resolved": resolved}


def sweep(*, now: datetime | None = None) -> dict[str, Any]:
    """The 30-second beat job: maintenance, flapping settling, cleared incidents."""
    now = now or timezone.now()
    return {
        "maintenance": maintenance_sync(now=now),
        "settled": flapping_settle(now=now),
        "cleared": cleared_resolve(now=now),
    }
