"""People acting on incidents: acknowledge, note, resolve, snooze."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.core.actors import api_key_ref
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
from apps.tenants.models import ApiKey

SNOOZE_DEFAULT_MINUTES = 60

logger = logging.getLogger(__name__)


def _lock(incident: Incident) -> Incident:
    return (
        Incident.objects.select_for_update(of=("self",))
        .select_related("monitor")
        .get(pk=incident.pk)
    )


def _settle(
    locked: Incident,
    status: str,
    *,
    at: datetime,
    user: Any,
    key: dict[str, str] | None,
    notify: bool,
    note: str,
    **event: Any,
) -> None:
    """Move the locked incident to `status` (acknowledged or resolved), recording when and by
    whom in its `<status>_at`, `<status>_by` and `<status>_by_key` fields; escalation stops.
    The timeline gets the event of the same name (`event`: more of its data)."""
    locked.status = status
    setattr(locked, f"{status}_at", at)
    setattr(locked, f"{status}_by", user)
    setattr(locked, f"{status}_by_key", key)
    locked.next_escalation_at = None
    locked.save(
        update_fields=[
            "status",
            f"{status}_at",
            f"{status}_by",
            f"{status}_by_key",
            "next_escalation_at",
            "updated_at",
        ]
    )
    timeline_record(
        locked,
        EventKind(status),
        at=at,
        notify=notify,
        actor=user,
        actor_key=key,
        note=note,
        **event,
    )


def _key(user: AbstractBaseUser | None, api_key: ApiKey | None) -> dict[str, str] | None:
    """The API key's snapshot when a key (not a user) acts."""
    return api_key_ref(api_key) if user is None else None


def incident_acknowledge(
    *,
    incident: Incident,
    user: AbstractBaseUser | None,
    note: str = "",
    api_key: ApiKey | None = None,
) -> Incident:
    """Someone (a user, or an API key) is on it: stops escalation. Acknowledging twice is a
    409; resolved too."""
    key = _key(user, api_key)
    with transaction.atomic():
        locked = _lock(incident)
        if locked.status != IncidentStatus.TRIGGERED:
            raise Conflict(f"The incident is {locked.status}.", code=f"already_{locked.status}")
        now = timezone.now()
        _settle(
            locked, IncidentStatus.ACKNOWLEDGED, at=now, user=user, key=key, notify=False, note=note
        )
        audit.record(
            org=locked.organization_id,
            action="incident.acknowledged",
            target=locked,
            before={"status": IncidentStatus.TRIGGERED},
            after={"status": locked.status},
        )
    return locked


def incident_note(
    *, incident: Incident, user: AbstractBaseUser | None, text: str, api_key: ApiKey | None = None
) -> IncidentEvent:
    with transaction.atomic():
        locked = _lock(incident)
        return timeline_record(
            locked,
            EventKind.NOTE,
            at=timezone.now(),
            notify=False,
            actor=user,
            actor_key=_key(user, api_key),
            note=text,
        )


def incident_resolve(
    *,
    incident: Incident,
    user: AbstractBaseUser | None = None,
    note: str = "",
    at: datetime | None = None,
    notify: bool = True,
    manual: bool = False,
    api_key: ApiKey | None = None,
    **data: Any,
) -> Incident:
    """Close the incident (by a user, by an API key with `manual`, or automatically) and stop
    escalation. The resolved event is notified unless `notify` is False. Resolving a resolved
    incident is a 409. A resolution someone asked for is audited."""
    manual = manual or user is not None or api_key is not None
    key = _key(user, api_key)
    with transaction.atomic():
        locked = _lock(incident)
        if locked.status == IncidentStatus.RESOLVED:
            raise Conflict("The incident is resolved already.", code="already_resolved")
        previous = locked.status
        at = at or timezone.now()
        _settle(
            locked,
            IncidentStatus.RESOLVED,
            at=at,
            user=user,
            key=key,
            notify=notify,
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
    *,
    incident: Incident,
    user: AbstractBaseUser | None,
    minutes: int = SNOOZE_DEFAULT_MINUTES,
    api_key: ApiKey | None = None,
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
    key = _key(user, api_key)
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
            created_by_key=key,
        )
        window.monitors.add(incident.monitor_id)
        timeline_record(
            incident,
            EventKind.SUPPRESSED,
            at=now,
            notify=False,
            actor=user,
            actor_key=key,
            snoozed_until=until.isoformat(),
            silence=str(window.pk),
        )
    return window
