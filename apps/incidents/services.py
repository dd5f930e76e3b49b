"""Writes for incidents: open (or fold into the open one), failed again, acknowledge, note,
resolve, snooze, custom incidents; alert rules, dependencies and maintenance windows.

Every IncidentEvent is written through `_event`, which publishes it to the listeners
(apps.alerts) inside the same transaction. `data["notify"]` tells them whether people hear
about it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.core.errors import Conflict, ServiceError
from apps.incidents import events, rules
from apps.incidents.models import (
    CUSTOM_RULE,
    OPEN_STATUSES,
    AlertRule,
    EventKind,
    Incident,
    IncidentEvent,
    IncidentStatus,
    MaintenanceWindow,
    MonitorDependency,
    Recurrence,
    WindowKind,
)
from apps.monitors.models import Monitor
from apps.tenants.models import Organization
from healthorch import metrics

logger = logging.getLogger(__name__)

SNOOZE_DEFAULT_MINUTES = 60


def _event(
    incident: Incident,
    kind: str,
    *,
    at: datetime,
    notify: bool,
    actor: AbstractBaseUser | None = None,
    note: str = "",
    **data: Any,
) -> IncidentEvent:
    event = IncidentEvent.objects.create(
        incident=incident,
        organization_id=incident.organization_id,
        kind=kind,
        at=at,
        actor=actor,
        note=note,
        data={"notify": notify, **data},
    )
    events.publish(incident=incident, event=event)
    return event


def _count_opened(severity: str) -> None:
    # After commit: a rolled-back open must not count.
    transaction.on_commit(lambda: metrics.incidents_created_total.labels(severity=severity).inc())


# --- Opening and folding ----------------------------------------------------------------------


def incident_open(
    *,
    monitor: Monitor,
    rule: str,
    severity: str,
    title: str,
    at: datetime,
    cause: dict[str, Any] | None = None,
    suppressed_by: str = "",
    suppressed_reason: str = "",
) -> tuple[Incident, bool]:
    """Open an incident for (monitor, rule), or fold into the one already open.

    Returns (incident, opened). Grouping's guarantee comes from the partial unique constraint
    `incident_one_open_per_monitor_rule`: of two transactions opening at once, the second's
    INSERT fails and it folds into the first one's row instead (the savepoint keeps the
    surrounding transaction usable). A suppressed incident (`suppressed_by`: "dependency",
    "silence") is recorded with notify False.
    """
    existing = _open_locked(monitor.pk, rule)
    if existing is not None:
        incident_seen(incident=existing, at=at)
        return existing, False
    cause = {**(cause or {})}
    if suppressed_by:
        cause["suppressed_by"] = suppressed_by
    incident = Incident(
        organization_id=monitor.organization_id,
        monitor=monitor,
        rule=rule,
        title=title[:300],
        severity=severity,
        cause=cause,
        suppressed=bool(suppressed_by),
        suppressed_reason=suppressed_reason[:200],
        opened_at=at,
        last_seen_at=at,
    )
    try:
        with transaction.atomic():
            incident.save(force_insert=True)
    except IntegrityError:
        existing = _open_locked(monitor.pk, rule)
        if existing is None:  # not the grouping race: a real integrity problem
            raise
        incident_seen(incident=existing, at=at)
        return existing, False
    _count_opened(severity)
    _event(
        incident,
        EventKind.OPENED,
        at=at,
        notify=not suppressed_by,
        rule=rule,
        severity=severity,
        **({"suppressed_by": suppressed_by} if suppressed_by else {}),
    )
    logger.info(
        "incident opened",
        extra={
            "incident": str(incident.pk),
            "monitor": str(monitor.pk),
            "rule": rule,
            "severity": severity,
            "suppressed": bool(suppressed_by),
        },
    )
    return incident, True


def _open_locked(monitor_id: object, rule: str) -> Incident | None:
    return (
        Incident.objects.select_for_update()
        .filter(monitor_id=monitor_id, rule=rule, status__in=OPEN_STATUSES)
        .first()
    )


def incident_seen(
    *, incident: Incident, at: datetime, occurrences: int | None = None, **data: Any
) -> None:
    """The cause happened again: bump occurrences (to `occurrences` if given, else by one) and
    last seen, and grow the collapsed `failed_again` line of the timeline (never notified)."""
    target = occurrences if occurrences is not None else incident.occurrences + 1
    delta = target - incident.occurrences
    if delta <= 0:
        return
    incident.occurrences = target
    incident.last_seen_at = max(incident.last_seen_at, at)
    Incident.objects.filter(pk=incident.pk).update(
        occurrences=target, last_seen_at=incident.last_seen_at, updated_at=timezone.now()
    )
    last = IncidentEvent.objects.filter(incident=incident).order_by("-at", "-id").first()
    if last is not None and last.kind == EventKind.FAILED_AGAIN:
        last.count += delta
        last.at = max(last.at, at)
        last.data = {**last.data, **data, "notify": False}
        last.save(update_fields=["count", "at", "data"])
        events.publish(incident=incident, event=last)
        return
    event = _event(incident, EventKind.FAILED_AGAIN, at=at, notify=False, **data)
    if delta > 1:
        event.count = delta
        event.save(update_fields=["count"])


def incident_create_custom(
    *,
    org: Organization,
    title: str,
    severity: str,
    description: str = "",
    actor: AbstractBaseUser | None = None,
) -> Incident:
    """Raise an incident by hand (or from another system through the API); notified."""
    now = timezone.now()
    with transaction.atomic():
        incident = Incident.objects.create(
            organization=org,
            monitor=None,
            rule=CUSTOM_RULE,
            title=title,
            description=description,
            severity=severity,
            cause={"raised_by": "api", "user": str(actor.pk) if actor else None},
            opened_at=now,
            last_seen_at=now,
        )
        _count_opened(severity)
        _event(incident, EventKind.OPENED, at=now, notify=True, actor=actor, rule=CUSTOM_RULE)
    return incident


# --- People acting on incidents ---------------------------------------------------------------


def _lock(incident: Incident) -> Incident:
    return (
        Incident.objects.select_for_update(of=("self",))
        .select_related("monitor")
        .get(pk=incident.pk)
    )


def incident_acknowledge(
    *, incident: Incident, user: AbstractBaseUser | None, note: str = ""
) -> Incident:
    """Someone is on it: stops escalation. Acknowledging twice is a 409; resolved too."""
    with transaction.atomic():
        locked = _lock(incident)
        if locked.status != IncidentStatus.TRIGGERED:
            raise Conflict(f"The incident is {locked.status}.", code=f"already_{locked.status}")
        now = timezone.now()
        locked.status = IncidentStatus.ACKNOWLEDGED
        locked.acknowledged_at = now
        locked.acknowledged_by = user
        locked.next_escalation_at = None
        locked.save(
            update_fields=[
                "status",
                "acknowledged_at",
                "acknowledged_by",
                "next_escalation_at",
                "updated_at",
            ]
        )
        _event(locked, EventKind.ACKNOWLEDGED, at=now, notify=False, actor=user, note=note)
    return locked


def incident_note(*, incident: Incident, user: AbstractBaseUser | None, text: str) -> IncidentEvent:
    with transaction.atomic():
        locked = _lock(incident)
        return _event(
            locked, EventKind.NOTE, at=timezone.now(), notify=False, actor=user, note=text
        )


def incident_resolve(
    *,
    incident: Incident,
    user: AbstractBaseUser | None = None,
    note: str = "",
    at: datetime | None = None,
    notify: bool = True,
    **data: Any,
) -> Incident:
    """Close the incident (by a user, or automatically when `user` is None) and stop
    escalation. The resolved event is notified unless `notify` is False. Resolving a resolved
    incident is a 409."""
    with transaction.atomic():
        locked = _lock(incident)
        if locked.status == IncidentStatus.RESOLVED:
            raise Conflict("The incident is resolved already.", code="already_resolved")
        at = at or timezone.now()
        locked.status = IncidentStatus.RESOLVED
        locked.resolved_at = at
        locked.resolved_by = user
        locked.next_escalation_at = None
        locked.save(
            update_fields=[
                "status",
                "resolved_at",
                "resolved_by",
                "next_escalation_at",
                "updated_at",
            ]
        )
        _event(
            locked,
            EventKind.RESOLVED,
            at=at,
            notify=notify,
            actor=user,
            note=note,
            auto=user is None,
            **data,
        )
    logger.info(
        "incident resolved",
        extra={"incident": str(locked.pk), "auto": user is None, "notify": notify},
    )
    return locked


def incident_snooze(
    *, incident: Incident, user: AbstractBaseUser | None, minutes: int = SNOOZE_DEFAULT_MINUTES
) -> MaintenanceWindow:
    """ "Snooze": a silence on the incident's monitor for `minutes` from now. New incidents of
    that monitor are recorded but not notified until it ends; the incident stays open."""
    if incident.monitor_id is None:
        raise ServiceError(
            "A custom incident has no monitor to silence; acknowledge it instead.",
            code="no_monitor",
        )
    if not incident.is_open:
        raise Conflict("The incident is resolved already.", code="already_resolved")
    now = timezone.now()
    until = now + timedelta(minutes=minutes)
    with transaction.atomic():
        window = MaintenanceWindow.objects.create(
            organization_id=incident.organization_id,
            name=f"Snoozed: {incident.title}"[:200],
            kind=WindowKind.SILENCE,
            recurrence=Recurrence.ONCE,
            starts_at=now,
            ends_at=until,
            incident=incident,
            created_by=user,
        )
        window.monitors.add(incident.monitor_id)
        _event(
            incident,
            EventKind.SUPPRESSED,
            at=now,
            notify=False,
            actor=user,
            snoozed_until=until.isoformat(),
            silence=str(window.pk),
        )
    return window


# --- Alert rules ------------------------------------------------------------------------------


def alert_rules_ensure(*, org: Organization) -> None:
    """Give the organization one row per rule kind (the defaults), keeping existing rows."""
    have = set(AlertRule.objects.for_org(org).values_list("kind", flat=True))
    missing = [
        AlertRule(
            organization=org,
            kind=kind,
            enabled=rule.enabled,
            threshold=rule.threshold,
            window_seconds=rule.window_seconds,
            severity=rule.severity,
        )
        for kind, rule in rules.DEFAULTS.items()
        if kind not in have
    ]
    if missing:
        AlertRule.objects.bulk_create(missing, ignore_conflicts=True)


def alert_rule_update(*, rule: AlertRule, data: dict[str, Any]) -> AlertRule:
    for field, value in data.items():
        setattr(rule, field, value)
    rule.save()
    return rule


# --- Dependencies -----------------------------------------------------------------------------


def dependency_create(
    *, org: Organization, monitor: Monitor, depends_on: Monitor
) -> MonitorDependency:
    """`monitor` depends on `depends_on` (both of `org`). Refuses itself and cycles."""
    if monitor.pk == depends_on.pk:
        raise ServiceError("A monitor cannot depend on itself.", field="depends_on", code="self")
    # Walk up from the parent: reaching the child again would make a cycle.
    seen, frontier = set(), {depends_on.pk}
    while frontier:
        if monitor.pk in frontier:
            raise ServiceError(
                "That would make a dependency cycle.", field="depends_on", code="cycle"
            )
        seen |= frontier
        frontier = (
            set(
                MonitorDependency.objects.for_org(org)
                .filter(monitor_id__in=frontier)
                .values_list("depends_on_id", flat=True)
            )
            - seen
        )
    try:
        with transaction.atomic():
            return MonitorDependency.objects.create(
                organization=org, monitor=monitor, depends_on=depends_on
            )
    except IntegrityError as exc:
        raise ServiceError(
            "This dependency exists already.", field="depends_on", code="exists"
        ) from exc


def dependency_delete(*, dependency: MonitorDependency) -> None:
    dependency.delete()


# --- Maintenance windows ----------------------------------------------------------------------


def window_create(
    *, org: Organization, data: dict[str, Any], user: AbstractBaseUser | None = None
) -> MaintenanceWindow:
    """Create a window or silence; monitors it covers enter maintenance at once if it is in
    force now (the sweep would within 30 s)."""
    from apps.incidents import machine

    monitors = data.pop("monitors", [])
    with transaction.atomic():
        window = MaintenanceWindow.objects.create(organization=org, created_by=user, **data)
        window.monitors.set(monitors)
        machine.maintenance_sync(org_ids={org.pk})
    return window


def window_update(*, window: MaintenanceWindow, data: dict[str, Any]) -> MaintenanceWindow:
    from apps.incidents import machine

    monitors = data.pop("monitors", None)
    with transaction.atomic():
        for field, value in data.items():
            setattr(window, field, value)
        window.save()
        if monitors is not None:
            window.monitors.set(monitors)
        machine.maintenance_sync(org_ids={window.organization_id})
    return window


def window_delete(*, window: MaintenanceWindow) -> None:
    """Delete a window; monitors it held in maintenance leave it at once."""
    from apps.incidents import machine

    org_id = window.organization_id
    with transaction.atomic():
        window.delete()
        machine.maintenance_sync(org_ids={org_id})
