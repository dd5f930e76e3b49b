"""Writes for incidents: open (or fold into the open one), failed again, acknowledge, note,
resolve, snooze, custom incidents; alert rules, dependencies and maintenance windows.

Every IncidentEvent is written through `_event`, which publishes it to the listeners
(apps.alerts) inside the same transaction. `data["notify"]` tells them whether people hear
about it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from apps.audit import audit
from apps.core.db import bulk_update_values
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


# --- Opening and folding (batched: a thousand monitors down at once is a few statements) ------


@dataclass
class Opening:
    """One incident to open for (monitor, rule), or to fold into the one already open."""

    monitor: Monitor
    rule: str
    severity: str
    title: str
    at: datetime
    cause: dict[str, Any] = dataclasses.field(default_factory=dict)
    # "dependency" or "silence": recorded, not notified.
    suppressed_by: str = ""
    suppressed_reason: str = ""


def _open_for(keys: Iterable[tuple[Any, str]]) -> dict[tuple[Any, str], Incident]:
    """The open incidents of these (monitor id, rule) pairs, locked, in primary-key order (so
    two batches lock them in the same order)."""
    keys = set(keys)
    if not keys:
        return {}
    rows = (
        Incident.objects.select_for_update(of=("self",))
        .filter(
            monitor_id__in={m for m, _ in keys},
            rule__in={r for _, r in keys},
            status__in=OPEN_STATUSES,
        )
        .order_by("pk")
    )
    return {(i.monitor_id, i.rule): i for i in rows if (i.monitor_id, i.rule) in keys}


def incidents_open_many(openings: list[Opening]) -> list[tuple[Incident, bool]]:
    """Open an incident per opening, or fold into the one already open for its (monitor,
    rule): (incident, opened) in the order given (one per pair).

    Grouping's guarantee comes from the partial unique constraint
    `incident_one_open_per_monitor_rule`: the INSERT skips rows that conflict with an open
    incident (ON CONFLICT DO NOTHING waits for a racing transaction's row, then skips), and
    the skipped openings fold into the row that won. Suppressed openings are recorded with
    notify False.
    """
    keyed: dict[tuple[Any, str], Opening] = {}
    for o in openings:
        keyed.setdefault((o.monitor.pk, o.rule), o)
    if not keyed:
        return []
    existing = _open_for(keyed)
    fresh: dict[tuple[Any, str], Incident] = {}
    for key, o in keyed.items():
        if key in existing:
            continue
        cause = {**o.cause, **({"suppressed_by": o.suppressed_by} if o.suppressed_by else {})}
        fresh[key] = Incident(
            organization_id=o.monitor.organization_id,
            monitor=o.monitor,
            rule=o.rule,
            title=o.title[:300],
            severity=o.severity,
            cause=cause,
            suppressed=bool(o.suppressed_by),
            suppressed_reason=o.suppressed_reason[:200],
            opened_at=o.at,
            last_seen_at=o.at,
        )
    inserted: set = set()
    if fresh:
        Incident.objects.bulk_create(list(fresh.values()), ignore_conflicts=True)
        # Ids are made here (UUIDs), so which rows went in is one indexed read away.
        inserted = set(
            Incident.objects.filter(pk__in=[i.pk for i in fresh.values()]).values_list(
                "pk", flat=True
            )
        )
        lost = [key for key, i in fresh.items() if i.pk not in inserted]
        existing.update(_open_for(lost))
    incidents_seen_many(
        [(existing[key], keyed[key].at, None, {}) for key in keyed if key in existing]
    )
    opened = [(key, i) for key, i in fresh.items() if i.pk in inserted]
    events_ = [
        IncidentEvent(
            incident=i,
            organization_id=i.organization_id,
            kind=EventKind.OPENED,
            at=i.opened_at,
            data={
                "notify": not keyed[key].suppressed_by,
                "rule": i.rule,
                "severity": i.severity,
                **({"suppressed_by": keyed[key].suppressed_by} if keyed[key].suppressed_by else {}),
            },
        )
        for key, i in opened
    ]
    IncidentEvent.objects.bulk_create(events_)
    for (_, incident), event in zip(opened, events_, strict=True):
        events.publish(incident=incident, event=event)
        _count_opened(incident.severity)
        logger.info(
            "incident opened",
            extra={
                "incident": str(incident.pk),
                "monitor": str(incident.monitor_id),
                "rule": incident.rule,
                "severity": incident.severity,
                "suppressed": incident.suppressed,
            },
        )
    out = []
    for key in keyed:
        if key in existing:
            out.append((existing[key], False))
        elif fresh[key].pk in inserted:
            out.append((fresh[key], True))
    return out


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
    """One opening (see incidents_open_many): (incident, opened)."""
    [result] = incidents_open_many(
        [Opening(monitor, rule, severity, title, at, cause or {}, suppressed_by, suppressed_reason)]
    )
    return result


def _open_locked(monitor_id: object, rule: str) -> Incident | None:
    return _open_for([(monitor_id, rule)]).get((monitor_id, rule))


def incidents_seen_many(items: list[tuple[Incident, datetime, int | None, dict[str, Any]]]) -> None:
    """The causes happened again. Each item: (incident, when, occurrences to reach or None
    for one more, facts for the event). Bumps occurrences and last seen, and grows the
    incident's collapsed `failed_again` line when it is the last of its timeline (else starts
    one). Never notified."""
    now = timezone.now()
    changed = []
    for incident, at, target, data in items:
        target = target if target is not None else incident.occurrences + 1
        delta = target - incident.occurrences
        if delta <= 0:
            continue
        incident.occurrences = target
        incident.last_seen_at = max(incident.last_seen_at, at)
        incident.updated_at = now
        changed.append((incident, delta, at, data))
    if not changed:
        return
    bulk_update_values(
        Incident, [c[0] for c in changed], ["occurrences", "last_seen_at", "updated_at"]
    )
    last_ids = dict(
        Incident.objects.filter(pk__in=[c[0].pk for c in changed])
        .annotate(
            last_event=Subquery(
                IncidentEvent.objects.filter(incident=OuterRef("pk"))
                .order_by("-at", "-id")
                .values("id")[:1]
            )
        )
        .values_list("pk", "last_event")
    )
    last = IncidentEvent.objects.in_bulk([i for i in last_ids.values() if i])
    grown, created = [], []
    for incident, delta, at, data in changed:
        event = last.get(last_ids.get(incident.pk))
        if event is not None and event.kind == EventKind.FAILED_AGAIN:
            event.count += delta
            event.at = max(event.at, at)
            event.data = {**event.data, **data, "notify": False}
            grown.append((incident, event))
        else:
            created.append(
                (
                    incident,
                    IncidentEvent(
                        incident=incident,
                        organization_id=incident.organization_id,
                        kind=EventKind.FAILED_AGAIN,
                        at=at,
                        count=delta,
                        data={"notify": False, **data},
                    ),
                )
            )
    bulk_update_values(IncidentEvent, [e for _, e in grown], ["count", "at", "data"])
    IncidentEvent.objects.bulk_create([e for _, e in created])
    for incident, event in grown + created:
        events.publish(incident=incident, event=event)


def incident_seen(
    *, incident: Incident, at: datetime, occurrences: int | None = None, **data: Any
) -> None:
    incidents_seen_many([(incident, at, occurrences, data)])


def incidents_resolve_many(
    items: list[tuple[Incident, bool, dict[str, Any]]], *, at: datetime, note: str = ""
) -> list[Incident]:
    """Resolve automatically (no user): each item (incident, notify, facts for the event).
    Incidents resolved meanwhile (by a person) are skipped. Stops escalation."""
    wanted = {i.pk: (notify, data) for i, notify, data in items}
    if not wanted:
        return []
    locked = list(
        Incident.objects.select_for_update(of=("self",))
        .filter(pk__in=list(wanted), status__in=OPEN_STATUSES)
        .order_by("pk")
    )
    if not locked:
        return []
    Incident.objects.filter(pk__in=[i.pk for i in locked]).update(
        status=IncidentStatus.RESOLVED,
        resolved_at=at,
        resolved_by=None,
        next_escalation_at=None,
        updated_at=timezone.now(),
    )
    rows = []
    for incident in locked:
        incident.status = IncidentStatus.RESOLVED
        incident.resolved_at = at
        incident.resolved_by = None
        incident.next_escalation_at = None
        notify, data = wanted[incident.pk]
        rows.append(
            IncidentEvent(
                incident=incident,
                organization_id=incident.organization_id,
                kind=EventKind.RESOLVED,
                at=at,
                note=data.pop("note", note),
                data={"notify": notify, "auto": True, **data},
            )
        )
    IncidentEvent.objects.bulk_create(rows)
    for incident, event in zip(locked, rows, strict=True):
        events.publish(incident=incident, event=event)
    logger.info("incidents resolved", extra={"count": len(locked), "auto": True})
    return locked


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
        audit.record(
            org=locked.organization_id,
            action="incident.acknowledged",
            target=locked,
            before={"status": IncidentStatus.TRIGGERED},
            after={"status": locked.status},
        )
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
    manual: bool = False,
    **data: Any,
) -> Incident:
    """Close the incident (by a user, by an API key with `manual`, or automatically) and stop
    escalation. The resolved event is notified unless `notify` is False. Resolving a resolved
    incident is a 409. A resolution someone asked for is audited."""
    manual = manual or user is not None
    with transaction.atomic():
        locked = _lock(incident)
        if locked.status == IncidentStatus.RESOLVED:
            raise Conflict("The incident is resolved already.", code="already_resolved")
        previous = locked.status
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
            auto=not manual,
            **data,
        )
        if manual:  # someone closed it (automatic resolutions are the timeline's)
            audit.record(
                org=locked.organization_id,
                action="incident.resolved",
                target=locked,
                before={"status": previous},
                after={"status": locked.status},
            )
    logger.info(
        "incident resolved",
        extra={"incident": str(locked.pk), "auto": not manual, "notify": notify},
    )
    return locked


def incident_delete(*, incident: Incident) -> None:
    """Erase an incident and its timeline (operators, in the console); recorded."""
    with transaction.atomic():
        audit.record(
            org=incident.organization_id,
            action="incident.deleted",
            target=incident,
            before=audit.snapshot(incident, fields=["title", "status", "severity", "opened_at"]),
        )
        incident.delete()


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
    from apps.incidents import sweeps

    monitors = data.pop("monitors", [])
    with transaction.atomic():
        window = MaintenanceWindow.objects.create(organization=org, created_by=user, **data)
        window.monitors.set(monitors)
        sweeps.maintenance_sync(org_ids={org.pk})
    return window


def window_update(*, window: MaintenanceWindow, data: dict[str, Any]) -> MaintenanceWindow:
    from apps.incidents import sweeps

    monitors = data.pop("monitors", None)
    with transaction.atomic():
        for field, value in data.items():
            setattr(window, field, value)
        window.save()
        if monitors is not None:
            window.monitors.set(monitors)
        sweeps.maintenance_sync(org_ids={window.organization_id})
    return window


def window_delete(*, window: MaintenanceWindow) -> None:
    """Delete a window; monitors it held in maintenance leave it at once."""
    from apps.incidents import sweeps

    org_id = window.organization_id
    with transaction.atomic():
        window.delete()
        sweeps.maintenance_sync(org_ids={org_id})
