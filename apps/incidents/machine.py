"""The incidents half of the state machine: monitor status changes and folded results in,
incidents out.

apps.monitors folds outcomes into status and sends on its seams inside the same transaction
(`monitors.events.status_changes` once per batch with its changes, `monitors.events.fold`
once per batch with every monitor's results; healthorch/wiring.py connects us), so a status, its StatusChange row and the incident it opens or
resolves commit together. Work is batched: a thousand monitors going down in one batch cost a
few statements per step, not a thousand; a batch where nothing crosses a rule costs none.

What only the clock can tell (windows starting and ending, flapping settling, uptime over a
window) is in apps.incidents.sweeps.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from apps.incidents import opening
from apps.incidents import rules as rule_defaults
from apps.incidents import windows as window_math
from apps.incidents.models import (
    OPEN_STATUSES,
    Incident,
    MaintenanceWindow,
    MonitorDependency,
    RuleKind,
    StatusChange,
    WindowKind,
)
from apps.incidents.opening import Opening
from apps.incidents.rules import RuleSet, rules_for_orgs
from apps.monitors.models import Monitor, MonitorStatus, Outcome

logger = logging.getLogger(__name__)

DOWN_RULES = [RuleKind.SERVICE_DOWN, RuleKind.CRITICAL_SERVICE_DOWN]
HEALTHY = (MonitorStatus.UP, MonitorStatus.DEGRADED)
# Entering and leaving these is our own doing (or a person's), not the service flapping.
NOT_FLIPS = [MonitorStatus.MAINTENANCE, MonitorStatus.PAUSED]


@dataclass
class Change:
    monitor: Monitor
    old: str
    new: str
    at: datetime
    result: Any = None
    reason: str = ""


class Context:
    """What a batch needs to know about its organizations, read once: rules, and the windows
    and silences that may be in force between the batch's earliest and latest moment."""

    def __init__(self, org_ids: set, start: datetime, end: datetime) -> None:
        self.rules = rules_for_orgs(org_ids)
        candidates = (
            MaintenanceWindow.objects.filter(organization_id__in=list(org_ids))
            .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=start))
            .filter(Q(starts_at__isnull=True) | Q(starts_at__lte=end))
            .prefetch_related("monitors")
        )
        self.windows: dict[Any, list[MaintenanceWindow]] = defaultdict(list)
        for w in candidates:
            self.windows[w.organization_id].append(w)

    def covering(self, monitor: Monitor, at: datetime, kind: str) -> MaintenanceWindow | None:
        for w in self.windows.get(monitor.organization_id, ()):
            if w.kind == kind and window_math.covers(w, monitor) and window_math.is_active(w, at):
                return w
        return None

    def quiet(self, monitor: Monitor, at: datetime) -> MaintenanceWindow | None:
        """The silence (or maintenance window) holding this monitor's notifications, if any."""
        return self.covering(monitor, at, WindowKind.SILENCE) or self.covering(
            monitor, at, WindowKind.MAINTENANCE
        )

    @classmethod
    def for_monitors(cls, monitors: list[Monitor], start: datetime, end: datetime) -> Context:
        return cls({m.organization_id for m in monitors}, start, end)


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


def _record(changes: list[Change]) -> None:
    StatusChange.objects.bulk_create(
        [
            StatusChange(
                monitor_id=c.monitor.pk,
                organization_id=c.monitor.organization_id,
                old=c.old,
                new=c.new,
                at=c.at,
                result_id=getattr(c.result, "pk", None),
                reason=c.reason[:200],
            )
            for c in changes
        ]
    )


def openings_for(
    items: list[tuple[Monitor, str, str, datetime, dict]], ctx: Context
) -> list[Opening]:
    """Openings for (monitor, rule, title, at, cause) whose rule is enabled, each marked
    suppressed when a silence holds its monitor or a parent it depends on is down."""
    items = [i for i in items if ctx.rules[i[0].organization_id][i[1]].enabled]
    if not items:
        return []
    parents: dict[Any, Monitor] = {}
    for dep in MonitorDependency.objects.filter(
        monitor_id__in={m.pk for m, *_ in items},
        depends_on__status__in=[MonitorStatus.DOWN, MonitorStatus.MAINTENANCE],
    ).select_related("depends_on"):
        parents.setdefault(dep.monitor_id, dep.depends_on)
    out = []
    for monitor, rule, title, at, cause in items:
        silence = ctx.quiet(monitor, at)
        by, reason = "", ""
        if silence is not None:
            by, reason = "silence", f"silenced by {silence.name}"
        elif monitor.pk in parents:
            parent = parents[monitor.pk]
            by, reason = "dependency", f"depends on {parent.name}, which is {parent.status}"
        severity = ctx.rules[monitor.organization_id][rule].severity
        out.append(Opening(monitor, rule, severity, title, at, cause, by, reason))
    return out


def recovery_notifies(incident: Incident, ruleset: RuleSet, silence) -> bool:
    """Recoveries are delivered, also for incidents a down parent suppressed; not when the
    service_recovery rule is off, a silence is in force, or the opening was never announced
    because a silence held it."""
    if not ruleset[RuleKind.SERVICE_RECOVERY].enabled or silence is not None:
        return False
    return incident.cause.get("suppressed_by") != "silence"


def _resolve_recovered(
    pairs: list[tuple[Monitor, datetime]], rules: list[str], ctx: Context, reason: str = ""
) -> None:
    """Resolve the open incidents of these rules for monitors that recovered."""
    when = {m.pk: (m, at) for m, at in pairs}
    if not when:
        return
    open_ = Incident.objects.filter(
        monitor_id__in=list(when), rule__in=rules, status__in=OPEN_STATUSES
    )
    by_at: dict[datetime, list] = defaultdict(list)
    for incident in open_:
        monitor, at = when[incident.monitor_id]
        ruleset = ctx.rules[monitor.organization_id]
        by_at[at].append(
            (
                incident,
                recovery_notifies(incident, ruleset, ctx.quiet(monitor, at)),
                {
                    "recovery": True,
                    "severity": ruleset[RuleKind.SERVICE_RECOVERY].severity,
                    "note": reason or f"{monitor.name} is {monitor.status} again",
                },
            )
        )
    for at, items in by_at.items():
        opening.incidents_resolve_many(items, at=at)


# --- Status changes ---------------------------------------------------------------------------


def handle_status_changes(*, changes: list[tuple[Monitor, str, Any]]) -> None:
    """Hears monitors.events.status_changes (a batch's changes)."""
    process_changes([Change(m, old, m.status, r.checked_at, r) for m, old, r in changes])


def process_changes(changes: list[Change], *, record: bool = True) -> None:
    """Log each change, then open or resolve incidents per the rules.

    A maintenance window in force takes its monitors into `maintenance` here already (the
    sweep would within seconds), so no incident opens in between.
    """
    if not changes:
        return
    if record:
        _record(changes)
    live = [c for c in changes if c.new not in NOT_FLIPS and not c.monitor.paused]
    if not live:
        return
    ctx = Context.for_monitors(
        [c.monitor for c in live], min(c.at for c in live), max(c.at for c in live)
    )
    held = []
    for c in live:
        window = ctx.covering(c.monitor, c.at, WindowKind.MAINTENANCE)
        if window is not None:
            held.append((c.monitor, window, c.at))
    if held:
        enter_maintenance(held)
        live = [c for c in live if c.monitor.status != MonitorStatus.MAINTENANCE]
    live = _flapping(live, ctx)
    apply_changes(live, ctx)


def apply_changes(changes: list[Change], ctx: Context) -> None:
    down = [c for c in changes if c.new == MonitorStatus.DOWN]
    healthy = [c for c in changes if c.new in HEALTHY]
    if down:
        # The early warning gave way to the outage itself: close it quietly.
        warnings = Incident.objects.filter(
            monitor_id__in=[c.monitor.pk for c in down],
            rule=RuleKind.CONSECUTIVE_FAILURES,
            status__in=OPEN_STATUSES,
        )
        at = {c.monitor.pk: c.at for c in down}
        for moment, group in _group_by(list(warnings), lambda i: at[i.monitor_id]).items():
            opening.incidents_resolve_many(
                [(i, False, {"note": "superseded: the monitor is down"}) for i in group], at=moment
            )
        items = []
        for c in down:
            ruleset = ctx.rules[c.monitor.organization_id]
            rule = (
                RuleKind.CRITICAL_SERVICE_DOWN
                if c.monitor.critical and ruleset[RuleKind.CRITICAL_SERVICE_DOWN].enabled
                else RuleKind.SERVICE_DOWN
            )
            items.append(
                (c.monitor, rule, f"{c.monitor.name} is down", c.at, _cause(rule, c.result))
            )
        opening.incidents_open_many(openings_for(items, ctx))
    if healthy:
        _resolve_recovered(
            [(c.monitor, c.at) for c in healthy], [*DOWN_RULES, RuleKind.CONSECUTIVE_FAILURES], ctx
        )


def _group_by(items: list, key) -> dict:
    groups: dict = defaultdict(list)
    for item in items:
        groups[key(item)].append(item)
    return groups


def _flapping(changes: list[Change], ctx: Context) -> list[Change]:
    """Take out the changes that belong to a flapping episode: one flapping incident collects
    the flips (collapsed, not notified) and nothing else opens or resolves until it settles.
    Returns the changes left to apply."""
    watched = [
        c for c in changes if ctx.rules[c.monitor.organization_id][RuleKind.FLAPPING].enabled
    ]
    if not watched:
        return changes
    ids = [c.monitor.pk for c in watched]
    current = opening.open_for((pk, RuleKind.FLAPPING) for pk in ids)
    longest = max(
        ctx.rules[c.monitor.organization_id][RuleKind.FLAPPING].window_seconds for c in watched
    )
    since = min(c.at for c in watched) - timedelta(seconds=longest)
    times: dict[Any, list[datetime]] = defaultdict(list)
    for monitor_id, at in (
        StatusChange.objects.filter(monitor_id__in=ids, at__gt=since)
        .exclude(new__in=NOT_FLIPS)
        .exclude(old__in=NOT_FLIPS)
        .values_list("monitor_id", "at")
    ):
        times[monitor_id].append(at)
    taken: set[int] = set()
    seen, to_open = [], []
    for c in watched:
        key = (c.monitor.pk, RuleKind.FLAPPING)
        rule = ctx.rules[c.monitor.organization_id][RuleKind.FLAPPING]
        if key in current:
            seen.append((current[key], c.at, None, {"status": c.new}))
            taken.add(id(c))
            continue
        start = c.at - timedelta(seconds=rule.window_seconds)
        n = sum(1 for t in times[c.monitor.pk] if start < t <= c.at)
        if n > rule.threshold:
            minutes = rule.window_seconds // 60
            to_open.append(
                (
                    c.monitor,
                    RuleKind.FLAPPING,
                    f"{c.monitor.name} is flapping ({n} status changes in {minutes} min)",
                    c.at,
                    {
                        "rule": RuleKind.FLAPPING,
                        "changes": n,
                        "window_seconds": rule.window_seconds,
                    },
                )
            )
            taken.add(id(c))
    opening.incidents_seen_many(seen)
    opening.incidents_open_many(openings_for(to_open, ctx))
    return [c for c in changes if id(c) not in taken]


# --- Folded results ---------------------------------------------------------------------------


def handle_fold(*, folded: list[tuple[Monitor, list]]) -> None:
    """Hears monitors.events.fold: rules that look at every result, not only status changes.

    Failed again (occurrences of the open down incident), consecutive failures before the
    monitor's own threshold, high response time, certificate expiry. Only monitors whose last
    result could cross one of them cost anything; a healthy batch costs no query.
    """
    again: list[Monitor] = []
    succeeded: list[tuple[Monitor, datetime]] = []
    candidates = []
    for monitor, results in folded:
        if monitor.paused or monitor.status == MonitorStatus.MAINTENANCE or not results:
            continue
        last = results[-1]
        at = last.checked_at
        wants = set()
        if monitor.status == MonitorStatus.DOWN:
            if monitor.consecutive_failures > monitor.failure_threshold:
                again.append(monitor)
        elif last.outcome == Outcome.DOWN:
            wants.add("consecutive")
        elif monitor.consecutive_successes == 1:
            # The first success after failures ends a consecutive-failures warning even when
            # the status never changed (the failures stayed below the monitor's threshold).
            succeeded.append((monitor, at))
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
    if again:
        at_of = {m.pk: (m, results[-1]) for m, results in folded}
        opening.incidents_seen_many(
            [
                (
                    incident,
                    at_of[incident.monitor_id][1].checked_at,
                    at_of[incident.monitor_id][0].consecutive_failures
                    - at_of[incident.monitor_id][0].failure_threshold
                    + 1,
                    {"error_class": getattr(at_of[incident.monitor_id][1], "error_class", "")},
                )
                for incident in Incident.objects.filter(
                    monitor_id__in=[m.pk for m in again],
                    rule__in=DOWN_RULES,
                    status__in=OPEN_STATUSES,
                ).order_by("pk")
            ]
        )
    if succeeded:
        ctx = Context.for_monitors(
            [m for m, _ in succeeded], min(a for _, a in succeeded), max(a for _, a in succeeded)
        )
        _resolve_recovered(succeeded, [RuleKind.CONSECUTIVE_FAILURES], ctx)
    if not candidates:
        return
    moments = [last.checked_at for _, last, _ in candidates]
    ctx = Context.for_monitors([m for m, _, _ in candidates], min(moments), max(moments))
    items = []
    for monitor, last, wants in candidates:
        items.extend(_crossed(monitor, last, wants, ctx.rules[monitor.organization_id]))
    opening.incidents_open_many(openings_for(items, ctx))


def _crossed(monitor: Monitor, last: Any, wants: set[str], ruleset: RuleSet) -> list[tuple]:
    at = last.checked_at
    out = []
    if "consecutive" in wants:
        r = ruleset[RuleKind.CONSECUTIVE_FAILURES]
        if monitor.consecutive_failures >= r.threshold:
            title = f"{monitor.name} failed {monitor.consecutive_failures} checks in a row"
            cause = _cause(r.kind, last, failures=monitor.consecutive_failures)
            out.append((monitor, r.kind, title, at, cause))
    if "slow" in wants:
        r = ruleset[RuleKind.HIGH_RESPONSE_TIME]
        limit = monitor.expected_response_time_ms * r.threshold
        if last.response_time_ms > limit:
            title = f"{monitor.name} responds slowly ({last.response_time_ms:.0f} ms, over {limit:.0f} ms)"
            cause = _cause(
                r.kind, last, limit_ms=limit, expected_ms=monitor.expected_response_time_ms
            )
            out.append((monitor, r.kind, title, at, cause))
    if "cert" in wants:
        r = ruleset[RuleKind.CERTIFICATE_EXPIRY]
        left = last.cert_expires_at - at
        if left < timedelta(days=r.threshold):
            title = f"The certificate of {monitor.name} expires in {max(0, left.days)} days"
            cause = _cause(
                r.kind,
                last,
                cert_expires_at=last.cert_expires_at.isoformat(),
                threshold_days=r.threshold,
            )
            out.append((monitor, r.kind, title, at, cause))
    return out


# --- Maintenance ------------------------------------------------------------------------------


def enter_maintenance(held: list[tuple[Monitor, MaintenanceWindow, datetime]]) -> None:
    by_at = _group_by(held, lambda h: h[2])
    for at, group in by_at.items():
        Monitor.objects.filter(pk__in=[m.pk for m, _, _ in group]).update(
            status=MonitorStatus.MAINTENANCE, status_changed_at=at, updated_at=timezone.now()
        )
    changes = []
    for monitor, window, at in held:
        changes.append(
            Change(
                monitor,
                monitor.status,
                MonitorStatus.MAINTENANCE,
                at,
                None,
                f"maintenance: {window.name}",
            )
        )
        monitor.status = MonitorStatus.MAINTENANCE
        monitor.status_changed_at = at
    _record(changes)
