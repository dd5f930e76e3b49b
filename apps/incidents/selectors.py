"""Reads for incidents, their timelines, rules, dependencies and maintenance windows."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from django.db.models import OuterRef, Prefetch, Q, QuerySet, Subquery
from django.utils import timezone

from apps.incidents import windows as window_math
from apps.incidents.models import (
    OPEN_STATUSES,
    AlertRule,
    Incident,
    IncidentEvent,
    MaintenanceWindow,
    MonitorDependency,
    RuleKind,
    StatusChange,
    WindowKind,
)

# Re-exported: when a maintenance window applies (status pages show upcoming maintenance).
from apps.incidents.windows import covers as covers
from apps.incidents.windows import next_start as next_start
from apps.incidents.windows import occurrence_at as occurrence_at
from apps.monitors.models import Monitor, MonitorStatus
from apps.tenants.models import Organization


def incident_list(*, org: Organization) -> QuerySet[Incident]:
    """Incidents of one organization, newest first; the API filters them
    (`apps.incidents.api.filters`)."""
    return (
        Incident.objects.for_org(org)
        .select_related("monitor", "acknowledged_by", "resolved_by")
        .order_by("-opened_at", "-id")
    )


def incident_events(*, incident: Incident) -> QuerySet[IncidentEvent]:
    return IncidentEvent.objects.filter(incident=incident).select_related("actor")


def open_incident(*, monitor_id: object, rule: str) -> Incident | None:
    return Incident.objects.filter(
        monitor_id=monitor_id, rule=rule, status__in=OPEN_STATUSES
    ).first()


def alert_rule_list(*, org: Organization) -> QuerySet[AlertRule]:
    return AlertRule.objects.for_org(org).order_by("kind")


def dependency_list(*, org: Organization) -> QuerySet[MonitorDependency]:
    return MonitorDependency.objects.for_org(org).select_related("monitor", "depends_on")


def window_list(*, org: Organization):
    """Newest first; the API filters them (`apps.incidents.api.filters`)."""
    return (
        MaintenanceWindow.objects.for_org(org)
        .select_related("created_by")
        .prefetch_related(Prefetch("monitors", to_attr=None))
        .order_by("-created_at", "-id")
    )


def windows_in_force(*, org_ids: set, at: datetime) -> list[MaintenanceWindow]:
    """Windows and silences in force at `at` for these organizations (two queries: the
    candidate windows, then their monitors)."""
    candidates = (
        MaintenanceWindow.objects.filter(organization_id__in=list(org_ids))
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=at))
        .filter(Q(starts_at__isnull=True) | Q(starts_at__lte=at))
        .prefetch_related("monitors")
    )
    return [w for w in candidates if window_math.is_active(w, at)]


def covering(windows: list[MaintenanceWindow], monitor) -> tuple[MaintenanceWindow | None, ...]:
    """(the maintenance window, the silence) covering the monitor, either may be None."""
    maintenance = silence = None
    for w in windows:
        if not window_math.covers(w, monitor):
            continue
        if w.kind == WindowKind.MAINTENANCE and maintenance is None:
            maintenance = w
        elif w.kind == WindowKind.SILENCE and silence is None:
            silence = w
    return maintenance, silence


# Incidents of these rules wait, after a pause or a maintenance window, until a check says the
# monitor is down again (or up: then they resolve).
_DOWN_RULES = (RuleKind.SERVICE_DOWN, RuleKind.CRITICAL_SERVICE_DOWN)


def incidents_on_hold(
    *, incidents: list[Incident], at: datetime | None = None
) -> dict[object, datetime | None]:
    """The incidents (of these; `monitor` loaded) whose escalation must wait at `at`, each
    with the moment its hold ends, or None when no clock ends it. On hold while:

    - a silence (a snooze) or a maintenance window covers its monitor: until the last of
      them ends;
    - its monitor is paused or in maintenance: until someone resumes it, or the sweep takes
      it out of maintenance;
    - (down incidents) its monitor was resumed or left maintenance with no verdict yet
      (status unknown): until a check finds it down again, or up, which resolves it.

    Two queries whatever the number of incidents (the windows, their monitors)."""
    at = at or timezone.now()
    watched = [i for i in incidents if i.monitor_id is not None]
    if not watched:
        return {}
    windows = windows_in_force(org_ids={i.organization_id for i in watched}, at=at)
    held: dict[object, datetime | None] = {}
    for incident in watched:
        monitor = incident.monitor
        if monitor.paused or monitor.status in (MonitorStatus.PAUSED, MonitorStatus.MAINTENANCE):
            held[incident.pk] = None
            continue
        if incident.rule in _DOWN_RULES and monitor.status == MonitorStatus.UNKNOWN:
            held[incident.pk] = None
            continue
        ends = [
            window_math.occurrence_at(w, at)[1] for w in windows if window_math.covers(w, monitor)
        ]
        if ends:
            # Every window in the list is in force now, so together they hold until the
            # last one ends.
            held[incident.pk] = max(ends)
    return held


def incident_is_silenced(*, incident: Incident, at: datetime | None = None) -> bool:
    """Whether the incident's escalation waits now (see incidents_on_hold): a silence (a
    snoozed incident is) or maintenance window covers its monitor, or the monitor is paused
    or not checked since."""
    return incident.pk in incidents_on_hold(incidents=[incident], at=at)


def status_changes_between(
    *, monitor_ids: Any, start: datetime, end: datetime, org: Organization | None = None
) -> tuple[dict[Any, str | None], dict[Any, list[tuple[datetime, str]]]]:
    """The monitors' status history over [start, end): ({monitor id: its status at `start`,
    None before its first change}, {monitor id: [(at, new status), ...] oldest first}). Two
    queries whatever the number of monitors."""
    before = StatusChange.objects.filter(monitor_id=OuterRef("pk"), at__lt=start).order_by(
        "-at", "-id"
    )
    at_start = dict(
        Monitor.objects.filter(pk__in=monitor_ids)
        .annotate(at_start=Subquery(before.values("new")[:1]))
        .values_list("pk", "at_start")
    )
    within = StatusChange.objects.filter(monitor_id__in=monitor_ids, at__gte=start, at__lt=end)
    if org is not None:
        within = within.filter(organization=org)
    changes: dict[Any, list[tuple[datetime, str]]] = defaultdict(list)
    for pk, at, new in within.order_by("at", "id").values_list("monitor_id", "at", "new"):
        changes[pk].append((at, new))
    return at_start, changes
