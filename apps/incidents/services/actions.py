"""People acting on incidents: acknowledge, note, resolve, snooze."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.core.errors import Conflict, ServiceError
from apps.incidents.models import (
    EventKind,
    Incident,
    IncidentEvent,
    IncidentStatus,
    MaintenanceWindow,
    Recurrence,
    WindowKind,
)
from apps.incidents.opening import timeline_record

SNOOZE_DEFAULT_MINUTES = 60

logger = logging.getLogger(__name__)


def _lock(incident: Incident) -> Incident:
    return (
        Incident.objects.select_for_update(of=("self",))
        .select_related("monitor")
        .get(pk=incident.pk)
    )


def _settle(locked: Incident, status: str, *, at: datetime, user: Any) -> None:
    """Move the locked incident to `status` (acknowledged or resolved), recording when and by
    whom in its `<status>_at` and `<status>_by` fields; escalation stops."""
    locked.status = status
    setattr(locked, f"{status}_at", at)
    setattr(locked, f"{status}_by", user)
    locked.next_escalation_at = None
    locked.save(
        update_fields=["status", f"{status}_at", f"{status}_by", "next_escalation_at", "updated_at"]
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
        _settle(locked, IncidentStatus.ACKNOWLEDGED, at=now, user=user)
        timeline_record(locked, EventKind.ACKNOWLEDGED, at=now, notify=False, actor=user, note=note)
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
        return timeline_record(
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
        _settle(locked, IncidentStatus.RESOLVED, at=at, user=user)
        timeline_record(
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
    audit.delete_recorded(
        incident, action="incident.deleted", fields=["title", "status", "severity", "opened_at"]
    )


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
        timeline_record(
            incident,
            EventKind.SUPPRESSED,
            at=now,
            notify=False,
            actor=user,
            snoozed_until=until.isoformat(),
            silence=str(window.pk),
        )
    return window
