"""The incidents half of the state machine: monitor status changes and folded results in,
incidents out.

apps.monitors folds outcomes into status and calls our listeners inside the same
transaction (`on_status_change` for every change, `on_fold` for every folded batch), so a
status, its StatusChange row and the incident it opens or resolves commit together.
The hot path costs no query for a batch where nothing crosses a rule.

Sweeps (apps.incidents.tasks) do what only the clock can tell: maintenance windows starting
and ending, flapping settling, slow responses and certificates clearing, uptime over a window.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from apps.incidents import rules as rule_defaults
from apps.incidents import selectors, services
from apps.incidents import windows as window_math
from apps.incidents.models import (
    OPEN_STATUSES,
    AlertRule,
    Incident,
    MaintenanceWindow,
    MonitorDependency,
    RuleKind,
    StatusChange,
    WindowKind,
)
from apps.incidents.rules import RuleSet, rules_for, rules_for_orgs
from apps.monitors.checkers.base import Outcome
from apps.monitors.models import Granularity, Monitor, MonitorStatus, ResultRollup

logger = logging.getLogger(__name__)

DOWN_RULES = [RuleKind.SERVICE_DOWN, RuleKind.CRITICAL_SERVICE_DOWN]
HEALTHY = (MonitorStatus.UP, MonitorStatus.DEGRADED)
# Fewer decisive checks than this in the window say too little about uptime to alert on.
LOW_UPTIME_MIN_CHECKS = 10


# --- Helpers ----------------------------------------------------------------------------------


def _cause(rule: str, result: Any, **extra: Any) -> dict[str, Any]:
    cause: dict[str, Any] = {"rule": rule, **extra}
    if result is None:
        return cause
    for name in ("outcome", "status_code", "error_class", "error_message", "response_time_ms"):
        value = getattr(result, name, None)
        if value not in (None, ""):
            cause[name] = value
    if getattr(result, "pk", None) is not None:
        cause["result_id"] = result.pk
    checked_at = getattr(result, "checked_at", None)
    if checked_at is not None:
        cause["checked_at"] = checked_at.isoformat()
    return cause


def _record(
    monitor: Monitor, old: str, new: str, at: datetime, result: Any = None, reason: str = ""
):
    StatusChange.objects.create(
        monitor_id=monitor.pk,
        organization_id=monitor.organization_id,
        old=old,
        new=new,
        at=at,
        result_id=getattr(result, "pk", None),
        reason=reason[:200],
    )


def _suppression(monitor: Monitor, silence: MaintenanceWindow | None) -> tuple[str, str]:
    """(suppressed_by, reason) for a new incident of this monitor, ("", "") to notify."""
    if silence is not None:
        return "silence", f"silenced by {silence.name}"
    parent = (
        MonitorDependency.objects.filter(
            monitor_id=monitor.pk,
            depends_on__status__in=[MonitorStatus.DOWN, MonitorStatus.MAINTENANCE],
        )
        .select_related("depends_on")
        .first()
    )
    if parent is not None:
        return (
            "dependency",
            f"depends on {parent.depends_on.name}, which is {parent.depends_on.status}",
        )
    return "", ""


def _silence_for(monitor: Monitor, at: datetime) -> MaintenanceWindow | None:
    found = selectors.windows_in_force(org_ids={monitor.organization_id}, at=at)
    maintenance, silence = selectors.covering(found, monitor)
    return silence or maintenance


def _open(
    monitor: Monitor,
    rule: str,
    ruleset: RuleSet,
    *,
    at: datetime,
    title: str,
    cause: dict,
    silence: MaintenanceWindow | None,
) -> Incident | None:
    r = ruleset[rule]
    if not r.enabled:
        return None
    suppressed_by, reason = _suppression(monitor, silence)
    incident, _ = services.incident_open(
        monitor=monitor,
        rule=rule,
        severity=r.severity,
        title=title,
        at=at,
        cause=cause,
        suppressed_by=suppressed_by,
        suppressed_reason=reason,
    )
    return incident


def _recovery_notifies(
    incident: Incident, ruleset: RuleSet, silence: MaintenanceWindow | None
) -> bool:
    """Recoveries are delivered, also for incidents a down parent suppressed; not when the
    service_recovery rule is off, a silence is in force, or the opening was never announced
    because a silence held it."""
    if not ruleset[RuleKind.SERVICE_RECOVERY].enabled or silence is not None:
        return False
    return incident.cause.get("suppressed_by") != "silence"


def _resolve_open(
    monitor: Monitor,
    rules: Iterable[str],
    ruleset: RuleSet,
    *,
    at: datetime,
    silence: MaintenanceWindow | None,
    reason: str,
) -> None:
    for incident in Incident.objects.filter(
        monitor_id=monitor.pk, rule__in=list(rules), status__in=OPEN_STATUSES
    ):
        services.incident_resolve(
            incident=incident,
            at=at,
            notify=_recovery_notifies(incident, ruleset, silence),
            note=reason,
            recovery=True,
            severity=ruleset[RuleKind.SERVICE_RECOVERY].severity,
        )


# --- Status changes ---------------------------------------------------------------------------


def handle_status_change(
    *, monitor: Monitor, old: str, new: str, result: Any, at: datetime
) -> None:
    """The on_status_change listener: log the change, then open or resolve per the rules.

    A maintenance window in force takes the monitor into `maintenance` here already (the
    sweep would within seconds), so no incident opens in between.
    """
    _record(monitor, old, new, at, result)
    if new in (MonitorStatus.MAINTENANCE, MonitorStatus.PAUSED) or monitor.paused:
        return
    found = selectors.windows_in_force(org_ids={monitor.organization_id}, at=at)
    maintenance, silence = selectors.covering(found, monitor)
    if maintenance is not None:
        _enter_maintenance(monitor, maintenance, at)
        return
    ruleset = rules_for(monitor.organization_id)
    if _flapping(monitor, new, ruleset, at=at, silence=silence):
        return
    _apply(monitor, old, new, ruleset, at=at, result=result, silence=silence)


def _apply(
    monitor: Monitor,
    old: str,
    new: str,
    ruleset: RuleSet,
    *,
    at: datetime,
    result: Any,
    silence: MaintenanceWindow | None,
) -> None:
    if new == MonitorStatus.DOWN:
        # The early warning gave way to the outage itself: close it quietly.
        warning = selectors.open_incident(monitor_id=monitor.pk, rule=RuleKind.CONSECUTIVE_FAILURES)
        if warning is not None:
            services.incident_resolve(
                incident=warning, at=at, notify=False, note="superseded: the monitor is down"
            )
        rule = (
            RuleKind.CRITICAL_SERVICE_DOWN
            if monitor.critical and ruleset[RuleKind.CRITICAL_SERVICE_DOWN].enabled
            else RuleKind.SERVICE_DOWN
        )
        _open(
            monitor,
            rule,
            ruleset,
            at=at,
            title=f"{monitor.name} is down",
            cause=_cause(rule, result),
            silence=silence,
        )
    elif new in HEALTHY:
        _resolve_open(
            monitor,
            [*DOWN_RULES, RuleKind.CONSECUTIVE_FAILURES],
            ruleset,
            at=at,
            silence=silence,
            reason=f"{monitor.name} is {new} again",
        )


def _flapping(
    monitor: Monitor, new: str, ruleset: RuleSet, *, at: datetime, silence: MaintenanceWindow | None
) -> bool:
    """True when this change belongs to a flapping episode: one flapping incident collects
    the flips (collapsed, not notified) and nothing else opens or resolves until it settles."""
    rule = ruleset[RuleKind.FLAPPING]
    if not rule.enabled:
        return False
    current = services._open_locked(monitor.pk, RuleKind.FLAPPING)
    if current is not None:
        services.incident_seen(incident=current, at=at, status=new)
        return True
    changes = _changes_within(monitor.pk, at, rule.window_seconds)
    if changes <= rule.threshold:
        return False
    _open(
        monitor,
        RuleKind.FLAPPING,
        ruleset,
        at=at,
        title=f"{monitor.name} is flapping ({changes} status changes in {rule.window_seconds // 60} min)",
        cause={
            "rule": RuleKind.FLAPPING,
            "changes": changes,
            "window_seconds": rule.window_seconds,
        },
        silence=silence,
    )
    return True


def _changes_within(monitor_id: object, at: datetime, seconds: int) -> int:
    # Entering and leaving maintenance is our own doing, not the service flapping.
    return (
        StatusChange.objects.filter(
            monitor_id=monitor_id, at__gt=at - timedelta(seconds=seconds), at__lte=at
        )
        .exclude(new__in=[MonitorStatus.MAINTENANCE, MonitorStatus.PAUSED])
        .exclude(old=MonitorStatus.MAINTENANCE)
        .count()
    )


# --- Folded results ---------------------------------------------------------------------------


def handle_fold(*, folded: list[tuple[Monitor, list]]) -> None:
    """The on_fold listener: rules that look at every result, not only status changes.

    Failed again (occurrences of the open down incident), consecutive failures before the
    monitor's own threshold, high response time, certificate expiry. Only monitors whose last
    result could cross one of them cost queries; a healthy batch costs none.
    """
    candidates = []
    for monitor, results in folded:
        if monitor.paused or monitor.status == MonitorStatus.MAINTENANCE or not results:
            continue
        last = results[-1]
        at = last.checked_at
        wants = set()
        if monitor.status == MonitorStatus.DOWN:
            if monitor.consecutive_failures > monitor.failure_threshold:
                wants.add("again")
        elif last.outcome == Outcome.DOWN:
            wants.add("consecutive")
        elapsed = getattr(last, "response_time_ms", None)
        expected = monitor.expected_response_time_ms
        if (
            elapsed
            and expected
            and elapsed > expected
            and last.outcome in (Outcome.UP, Outcome.DEGRADED)
        ):
            wants.add("slow")
        cert = getattr(last, "cert_expires_at", None)
        if cert is not None and cert < at + timedelta(days=rule_defaults.MAX_CERT_DAYS):
            wants.add("cert")
        if wants:
            candidates.append((monitor, last, wants))
    if not candidates:
        return
    rulesets = rules_for_orgs({m.organization_id for m, _, _ in candidates})
    for monitor, last, wants in candidates:
        _fold_one(monitor, last, wants, rulesets[monitor.organization_id])


def _fold_one(monitor: Monitor, last: Any, wants: set[str], ruleset: RuleSet) -> None:
    at = last.checked_at
    if "again" in wants:
        for incident in Incident.objects.filter(
            monitor_id=monitor.pk, rule__in=DOWN_RULES, status__in=OPEN_STATUSES
        ):
            services.incident_seen(
                incident=incident,
                at=at,
                occurrences=monitor.consecutive_failures - monitor.failure_threshold + 1,
                error_class=getattr(last, "error_class", ""),
            )
    opening = []
    if "consecutive" in wants:
        r = ruleset[RuleKind.CONSECUTIVE_FAILURES]
        if r.enabled and monitor.consecutive_failures >= r.threshold:
            opening.append(
                (
                    RuleKind.CONSECUTIVE_FAILURES,
                    f"{monitor.name} failed {monitor.consecutive_failures} checks in a row",
                    {"failures": monitor.consecutive_failures},
                )
            )
    if "slow" in wants:
        r = ruleset[RuleKind.HIGH_RESPONSE_TIME]
        limit = monitor.expected_response_time_ms * r.threshold
        if r.enabled and last.response_time_ms > limit:
            opening.append(
                (
                    RuleKind.HIGH_RESPONSE_TIME,
                    f"{monitor.name} responds slowly ({last.response_time_ms:.0f} ms, over {limit:.0f} ms)",
                    {"limit_ms": limit, "expected_ms": monitor.expected_response_time_ms},
                )
            )
    if "cert" in wants:
        r = ruleset[RuleKind.CERTIFICATE_EXPIRY]
        left = last.cert_expires_at - at
        if r.enabled and left < timedelta(days=r.threshold):
            days = max(0, left.days)
            opening.append(
                (
                    RuleKind.CERTIFICATE_EXPIRY,
                    f"The certificate of {monitor.name} expires in {days} days",
                    {
                        "cert_expires_at": last.cert_expires_at.isoformat(),
                        "threshold_days": r.threshold,
                    },
                )
            )
    if not opening:
        return
    silence = _silence_for(monitor, at)
    for rule, title, extra in opening:
        _open(
            monitor,
            rule,
            ruleset,
            at=at,
            title=title,
            cause=_cause(rule, last, **extra),
            silence=silence,
        )


# --- Maintenance ------------------------------------------------------------------------------


def _enter_maintenance(monitor: Monitor, window: MaintenanceWindow, at: datetime) -> None:
    old = monitor.status
    Monitor.objects.filter(pk=monitor.pk).update(
        status=MonitorStatus.MAINTENANCE, status_changed_at=at, updated_at=timezone.now()
    )
    monitor.status = MonitorStatus.MAINTENANCE
    monitor.status_changed_at = at
    _record(monitor, old, MonitorStatus.MAINTENANCE, at, reason=f"maintenance: {window.name}")


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
    active = [
        w
        for w in selectors.windows_in_force(org_ids=org_ids, at=now)
        if w.kind == WindowKind.MAINTENANCE
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
    entered = left = 0
    with transaction.atomic():
        monitors = list(
            Monitor.objects.filter(paused=False)
            .filter(
                Q(organization_id__in=list(org_ids), status=MonitorStatus.MAINTENANCE) | covered
            )
            .order_by("pk")
            .select_for_update(of=("self",))
        )
        for monitor in monitors:
            window = next((w for w in active if window_math.covers(w, monitor)), None)
            if window is not None and monitor.status != MonitorStatus.MAINTENANCE:
                _enter_maintenance(monitor, window, now)
                entered += 1
            elif window is None and monitor.status == MonitorStatus.MAINTENANCE:
                new = _status_after_maintenance(monitor)
                Monitor.objects.filter(pk=monitor.pk).update(
                    status=new, status_changed_at=now, updated_at=timezone.now()
                )
                monitor.status = new
                monitor.status_changed_at = now
                handle_status_change(
                    monitor=monitor, old=MonitorStatus.MAINTENANCE, new=new, result=None, at=now
                )
                left += 1
    if entered or left:
        logger.info("maintenance synced", extra={"entered": entered, "left": left})
    return {"entered": entered, "left": left}


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
            incident = (
                Incident.objects.select_for_update().filter(pk=pk, status__in=OPEN_STATUSES).first()
            )
            if monitor is None or incident is None:
                continue
            silence = _silence_for(monitor, now)
            services.incident_resolve(
                incident=incident,
                at=now,
                notify=silence is None and not incident.suppressed,
                note=f"settled: {monitor.name} is {monitor.status}",
                settled=True,
            )
            ruleset = rulesets[org_id]
            if monitor.status == MonitorStatus.DOWN:
                _apply(
                    monitor,
                    MonitorStatus.UNKNOWN,
                    MonitorStatus.DOWN,
                    ruleset,
                    at=now,
                    result=None,
                    silence=silence,
                )
            elif monitor.status in HEALTHY:
                _apply(
                    monitor,
                    MonitorStatus.DOWN,
                    monitor.status,
                    ruleset,
                    at=now,
                    result=None,
                    silence=silence,
                )
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
    rulesets = rules_for_orgs({i.organization_id for i in open_})
    done = 0
    for incident in open_:
        monitor = incident.monitor
        last = CheckResult.objects.filter(monitor_id=monitor.pk).order_by("-checked_at").first()
        if last is None or last.checked_at <= incident.last_seen_at:
            continue
        ruleset = rulesets[incident.organization_id]
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
            services.incident_resolve(
                incident=incident,
                at=now,
                notify=_recovery_notifies(incident, ruleset, _silence_for(monitor, now)),
                note="cleared" if cleared else "rule disabled",
                recovery=True,
            )
            done += 1
    return done


def low_uptime_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Open a low_uptime incident for monitors whose uptime over the rule's window (complete
    hours of ResultRollup, degraded counted as up, inconclusive left out) is below the
    threshold, and resolve it once uptime is back at or above. One aggregate per window size."""
    now = now or timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    custom = AlertRule.objects.filter(kind=RuleKind.LOW_UPTIME)
    windows = {rule_defaults.DEFAULTS[RuleKind.LOW_UPTIME].window_seconds}
    windows |= {r.window_seconds for r in custom if r.window_seconds}
    opened = resolved = 0
    open_by_monitor = {
        i.monitor_id: i
        for i in Incident.objects.filter(
            rule=RuleKind.LOW_UPTIME, status__in=OPEN_STATUSES
        ).select_related("monitor")
    }
    seen_org_rules: dict[object, RuleSet] = {}
    for seconds in sorted(windows):
        rows = (
            ResultRollup.objects.filter(
                granularity=Granularity.HOUR,
                bucket_start__gte=hour - timedelta(seconds=seconds),
                bucket_start__lt=hour,
            )
            .values("monitor_id", "organization_id")
            .annotate(up=Sum("up"), degraded=Sum("degraded"), down=Sum("down"))
        )
        rows = list(rows)
        missing = {r["organization_id"] for r in rows} - set(seen_org_rules)
        seen_org_rules.update(rules_for_orgs(missing))
        below = {}
        for row in rows:
            r = seen_org_rules[row["organization_id"]][RuleKind.LOW_UPTIME]
            if r.window_seconds != seconds:
                continue
            healthy = row["up"] + row["degraded"]
            decisive = healthy + row["down"]
            pct = 100 * healthy / decisive if decisive else None
            current = open_by_monitor.get(row["monitor_id"])
            if current is not None and (not r.enabled or (pct is not None and pct >= r.threshold)):
                services.incident_resolve(
                    incident=current,
                    at=now,
                    notify=_recovery_notifies(
                        current, seen_org_rules[row["organization_id"]], None
                    ),
                    note=f"uptime back to {pct:.2f}%" if pct is not None else "rule disabled",
                    recovery=True,
                )
                resolved += 1
            elif r.enabled and decisive >= LOW_UPTIME_MIN_CHECKS and pct < r.threshold:
                below[row["monitor_id"]] = (pct, decisive)
        for monitor in Monitor.objects.filter(pk__in=list(below), paused=False).exclude(
            status=MonitorStatus.MAINTENANCE
        ):
            pct, decisive = below[monitor.pk]
            ruleset = seen_org_rules[monitor.organization_id]
            with transaction.atomic():
                incident = _open(
                    monitor,
                    RuleKind.LOW_UPTIME,
                    ruleset,
                    at=now,
                    title=f"{monitor.name} uptime {pct:.2f}% over {seconds // 3600} h",
                    cause={
                        "rule": RuleKind.LOW_UPTIME,
                        "uptime_pct": round(pct, 4),
                        "checks": decisive,
                        "window_seconds": seconds,
                        "threshold": ruleset[RuleKind.LOW_UPTIME].threshold,
                    },
                    silence=_silence_for(monitor, now),
                )
            if incident is not None and monitor.pk not in open_by_monitor:
                opened += 1
    return {"opened": opened, "resolved": resolved}


def sweep(*, now: datetime | None = None) -> dict[str, Any]:
    """The 30-second beat job: maintenance, flapping settling, cleared incidents."""
    now = now or timezone.now()
    return {
        "maintenance": maintenance_sync(now=now),
        "settled": flapping_settle(now=now),
        "cleared": cleared_resolve(now=now),
    }
