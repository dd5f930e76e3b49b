"""Who hears about an incident, when: the listener on incident events and the escalation walk.

The listener is a batch listener (apps.incidents.events.publish_many): a fold batch that
opened many incidents is one call, one outbox insert and one incident update. Events we react
to (published by apps.incidents with `data["notify"]` True):
- `opened`: run the policy's first step (now, or schedule it after its delay);
- `resolved`: the resolved notice to every channel that was notified of the incident
  (channels with notify_on_resolved off are skipped); escalation stops;
- `flapping`: one notice to the first step's channels, at once; escalation is unchanged.
Events with `notify` False are ignored; of a `suppressed` incident only the recovery is sent, to
the first step's channels (nobody was told of its opening). We write
`escalated` (each step run by the sweep) and `notified` (each final delivery outcome) events,
always with `notify` False so they never come back to us as work.

The walk: `Incident.escalation_step` is the index of the step due at `next_escalation_at`
(null: nothing more to do). Step 1's delay counts from the opening, each later step's from
the previous step; after the last step the policy restarts `repeat` times (a restart waits
step 1's delay, at least a minute). Acknowledging or resolving clears `next_escalation_at`.

Holds: the walk waits while `apps.incidents.selectors.incidents_on_hold` says so (snoozed or
silenced, in maintenance, monitor paused or not checked since it came back). The sweep moves a
held incident's due step to the end of the hold, so that step runs once the hold is over and
later steps count from then.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.alerts.models import (
    Channel,
    EscalationPolicy,
    Notification,
    NotificationKind,
    NotificationStatus,
)
from apps.alerts.services.outbox import (
    notification_rows,
    notifications_save,
    notifications_write,
    transaction_memo,
)
from apps.core.db import bulk_update_values
from apps.incidents import events
from apps.incidents.models import EventKind, Incident, IncidentEvent, IncidentStatus, Severity
from apps.incidents.selectors import incident_is_silenced, incidents_on_hold
from apps.plans.selectors import entitlements_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    delay_minutes: int
    channels: list[Channel]


@dataclass(frozen=True)
class Route:
    """The steps that govern one incident (from a policy, or the severity's default)."""

    steps: list[Step]
    repeat: int
    source: str  # the policy's name, or "default:<severity>"


def _org_channels(org_id: Any, severity: str) -> list[Channel]:
    return [
        c
        for c in Channel.objects.filter(organization_id=org_id, enabled=True).order_by(
            "created_at", "id"
        )
        if c.takes(severity)
    ]


def default_route(*, org_id: Any, severity: str) -> Route:
    """Defaults when no policy covers the severity (or the plan lacks the feature):

    info: the first channel, no escalation; warning: the first channel after 1 minute, every
    channel 15 minutes later; error: the first channel at once, every channel 5 minutes
    later; critical: every channel at once, and every channel again a minute later.
    "First" is the oldest enabled channel that takes the severity.
    """
    every = _org_channels(org_id, severity)
    first = every[:1]
    table = {
        Severity.INFO: [Step(0, first)],
        Severity.WARNING: [Step(1, first), Step(15, every)],
        Severity.ERROR: [Step(0, first), Step(5, every)],
        Severity.CRITICAL: [Step(0, every), Step(1, every)],
    }
    return Route(steps=table[Severity(severity)], repeat=0, source=f"default:{severity}")


def _route(incident: Incident) -> Route:
    org = incident.organization
    if entitlements_for(org).has("escalation_policies"):
        for policy in EscalationPolicy.objects.for_org(org).filter(enabled=True):
            if incident.severity in policy.severities:
                steps = [
                    Step(
                        s.delay_minutes,
                        [
                            c
                            for c in s.channels.order_by("created_at")
                            if c.takes(incident.severity)
                        ],
                    )
                    for s in policy.steps.order_by("position")
                ]
                if steps:
                    return Route(steps=steps, repeat=policy.repeat, source=policy.name)
    return default_route(org_id=incident.organization_id, severity=incident.severity)


# Routes are memoised for the rest of one transaction (outbox.transaction_memo), keyed by a
# version that every channel or policy write in this process bumps.
_version = [0]


def routes_changed() -> None:
    _version[0] += 1


def route_for(*, incident: Incident) -> Route:
    memo = transaction_memo("routes")
    if memo is None:
        return _route(incident)
    key = (incident.organization_id, incident.severity, _version[0])
    if key not in memo:
        memo[key] = _route(incident)
    return memo[key]


def _after(route: Route, index: int, repeats: int, now: Any) -> tuple[int, int, Any]:
    """(next step index, repeats, due time or None) once step `index` has run at `now`."""
    if index + 1 < len(route.steps):
        return index + 1, repeats, now + timedelta(minutes=route.steps[index + 1].delay_minutes)
    if repeats < route.repeat:
        wait = max(route.steps[0].delay_minutes, 1)
        return 0, repeats + 1, now + timedelta(minutes=wait)
    return index, repeats, None


def _set_walk(incident: Incident, step: int, repeats: int, due: Any) -> None:
    Incident.objects.filter(pk=incident.pk).update(
        escalation_step=step, escalation_repeats=repeats, next_escalation_at=due
    )
    # The caller's instance too, so a later save() of it does not write the old values back.
    incident.escalation_step, incident.escalation_repeats = step, repeats
    incident.next_escalation_at = due


# --- the listener ---------------------------------------------------------------------------


def on_incident_events(*, items: list[tuple[Incident, IncidentEvent]]) -> None:
    """Hears incidents.events.incident_events (connected in healthorch/wiring.py); runs
    in the events' transaction. Openings are handled together: a batch of them costs one
    outbox insert and one incident update, whatever its size."""
    opened = []
    for incident, event in items:
        if not (event.data or {}).get("notify"):
            continue
        if incident.suppressed:
            # Its opening told no one (a parent dependency was down), but its recovery is
            # still delivered: there is no "channel told" to answer, so it goes where the
            # first step would have gone.
            if event.kind == EventKind.RESOLVED:
                notify_suppressed_recovery(incident=incident, event=event)
            continue
        if event.kind == EventKind.OPENED:
            opened.append((incident, event))
        elif event.kind == EventKind.RESOLVED:
            notify_resolved(incident=incident, event=event)
        elif event.kind == EventKind.FLAPPING:
            route = route_for(incident=incident)
            notifications_write(
                incident=incident,
                event=event,
                channels=route.steps[0].channels,
                kind=NotificationKind.FLAPPING,
                key_prefix=str(event.pk),
            )
        else:
            logger.info(
                "incident event not notified", extra={"kind": event.kind, "event": event.pk}
            )
    escalation_start_many(opened)


def escalation_start(*, incident: Incident, event: IncidentEvent) -> None:
    """Run the first step now if its delay is zero, else schedule it from the opening."""
    escalation_start_many([(incident, event)])


def escalation_start_many(opened: list[tuple[Incident, IncidentEvent]]) -> None:
    """escalation_start for many openings: the first steps due now are written as one outbox
    insert, and every walk set by one incident update. Routes and grouping state are read
    once per (organization, severity) and channel, not per incident."""
    if not opened:
        return
    now = timezone.now()
    rows: list[Notification] = []
    walking: list[Incident] = []
    for incident, event in opened:
        route = route_for(incident=incident)
        if not any(step.channels for step in route.steps):
            continue  # no channel takes this severity: nothing to walk
        first = route.steps[0]
        if first.delay_minutes:
            walk = (0, 0, incident.opened_at + timedelta(minutes=first.delay_minutes))
        else:
            rows += notification_rows(
                incident=incident,
                event=event,
                channels=first.channels,
                kind=NotificationKind.OPENED,
                key_prefix=str(event.pk),
                now=now,
            )
            walk = _after(route, 0, 0, now)
        # The caller's instance too, so a later save() of it does not write the old values.
        incident.escalation_step, incident.escalation_repeats, incident.next_escalation_at = walk
        walking.append(incident)
    notifications_save(rows)
    bulk_update_values(Incident, walking, _WALK_FIELDS)


_WALK_FIELDS = ["escalation_step", "escalation_repeats", "next_escalation_at"]


# Statuses that mean "this channel was (or is being) told about the incident".
_TOLD = [
    NotificationStatus.SENT,
    NotificationStatus.GROUPED,
    NotificationStatus.PENDING,
    NotificationStatus.SENDING,
    NotificationStatus.FAILED,
]


def notify_resolved(*, incident: Incident, event: IncidentEvent) -> list[Notification]:
    """The resolved notice, to every channel told of the incident that wants resolutions."""
    now = timezone.now()
    _set_walk(incident, incident.escalation_step, incident.escalation_repeats, None)
    # An opened notice still held for grouping is moot now: drop it instead of announcing a
    # problem and its end together.
    held = Notification.objects.filter(
        incident=incident, status=NotificationStatus.PENDING, hold_until__gt=now
    )
    dropped = set(held.values_list("channel_id", flat=True))
    held.update(status=NotificationStatus.SUPPRESSED, last_error="resolved before it was sent")
    told = (
        Notification.objects.filter(incident=incident, status__in=_TOLD)
        .exclude(kind__in=[NotificationKind.RESOLVED, NotificationKind.TEST])
        .order_by()
        .values_list("channel_id", flat=True)
        .distinct()
    )
    channels = list(
        Channel.objects.filter(
            pk__in=set(told) - dropped, enabled=True, notify_on_resolved=True
        ).order_by("created_at")
    )
    return _resolved_notices(incident, event, channels)


def _resolved_notices(
    incident: Incident, event: IncidentEvent, channels: list[Channel]
) -> list[Notification]:
    return notifications_write(
        incident=incident,
        event=event,
        channels=channels,
        kind=NotificationKind.RESOLVED,
        key_prefix=str(event.pk),
    )


def notify_suppressed_recovery(*, incident: Incident, event: IncidentEvent) -> list[Notification]:
    """The recovery of an incident that was recorded but never notified."""
    route = route_for(incident=incident)
    channels = [c for c in route.steps[0].channels if c.notify_on_resolved] if route.steps else []
    return _resolved_notices(incident, event, channels)


# --- the sweep ------------------------------------------------------------------------------


# An incident on hold (apps.incidents.selectors.incidents_on_hold) is looked at again after
# this long at most: a snooze ends on its own clock, but a window deleted early or a monitor
# resumed has none.
HOLD_RECHECK = timedelta(seconds=60)


def escalation_sweep(*, now: Any = None, limit: int = 200) -> int:
    """Run every due escalation step; returns how many ran. Bounded per call.

    Incidents on hold (snoozed, silenced, in maintenance, monitor paused or not checked since
    it came back) do not escalate: their due step moves to the end of the hold (at most
    HOLD_RECHECK ahead, then looked at again), so it runs once the hold is over, and they
    never crowd the sweep's limit meanwhile."""
    now = now or timezone.now()
    # Acknowledged or resolved incidents whose due time was left set have nothing to do.
    Incident.objects.filter(next_escalation_at__isnull=False).exclude(
        status=IncidentStatus.TRIGGERED
    ).update(next_escalation_at=None)
    due = list(
        Incident.objects.filter(next_escalation_at__lte=now, status=IncidentStatus.TRIGGERED)
        .select_related("monitor")
        .order_by("next_escalation_at")[:limit]
    )
    holds = incidents_on_hold(incidents=due, at=now)
    ran = 0
    for incident in due:
        if incident.pk in holds:
            escalation_hold(incident=incident, until=holds[incident.pk], now=now)
            continue
        ran += escalation_run_step(
            incident_id=incident.pk,
            due_at=incident.next_escalation_at,
            step=incident.escalation_step,
            repeats=incident.escalation_repeats,
            now=now,
        )
    return ran


def escalation_hold(*, incident: Incident, until: Any, now: Any) -> bool:
    """Move a held incident's due step to the end of its hold (or HOLD_RECHECK ahead).

    Compare-and-set on (status, next_escalation_at): an acknowledgement or a step run by a
    racing sweep meanwhile wins, and this changes nothing."""
    later = now + HOLD_RECHECK
    if until is not None and until < later:
        later = max(until, now)
    moved = Incident.objects.filter(
        pk=incident.pk,
        status=IncidentStatus.TRIGGERED,
        next_escalation_at=incident.next_escalation_at,
    ).update(next_escalation_at=later)
    if moved:
        logger.info(
            "escalation held",
            extra={"incident": str(incident.pk), "until": later.isoformat()},
        )
    return bool(moved)


def escalation_run_step(
    *, incident_id: Any, due_at: Any, step: int, repeats: int, now: Any
) -> bool:
    """Run one due step of one incident, exactly once.

    The claim is a compare-and-set on (status, next_escalation_at, step, repeats): two
    sweeps racing for the same step, or an acknowledgement landing meanwhile, leave exactly
    one winner (an ack clears next_escalation_at, so the sweep's UPDATE matches nothing).
    """
    with transaction.atomic():
        incident = Incident.objects.select_related("organization", "monitor").get(pk=incident_id)
        route = route_for(incident=incident)
        if step >= len(route.steps):  # the policy lost steps since: the walk is over
            next_step, next_repeats, next_due = step, repeats, None
        else:
            next_step, next_repeats, next_due = _after(route, step, repeats, now)
        claimed = Incident.objects.filter(
            pk=incident_id,
            status=IncidentStatus.TRIGGERED,
            next_escalation_at=due_at,
            escalation_step=step,
            escalation_repeats=repeats,
        ).update(
            escalation_step=next_step, escalation_repeats=next_repeats, next_escalation_at=next_due
        )
        if not claimed or step >= len(route.steps):
            return False
        channels = route.steps[step].channels
        if not channels:  # every channel of this step was disabled or deleted meanwhile
            return False
        event = IncidentEvent.objects.create(
            incident=incident,
            organization_id=incident.organization_id,
            kind=EventKind.ESCALATED,
            at=now,
            data={
                "step": step + 1,
                "repeat": repeats,
                "policy": route.source,
                "channels": [str(c.pk) for c in channels],
                "notify": False,
            },
        )
        events.publish(incident=incident, event=event)
        first_notice = step == 0 and repeats == 0
        notifications_write(
            incident=incident,
            event=event,
            channels=channels,
            kind=NotificationKind.OPENED if first_notice else NotificationKind.ESCALATED,
            key_prefix=str(event.pk),
            step=step + 1,
        )
    logger.info(
        "incident escalated",
        extra={"incident": str(incident_id), "step": step + 1, "channels": len(channels)},
    )
    return True


def escalation_expedite(*, incident_id: Any, reason: str, now: Any = None) -> bool:
    """Run the incident's next escalation step now instead of at its due time (healing
    failed, so waiting for the policy's delay only delays the humans). When the walk is
    over, the last step runs once more. Acknowledged or resolved incidents are left alone.
    Returns whether a step ran; the claim in escalation_run_step keeps it exactly-once."""
    now = now or timezone.now()
    with transaction.atomic():
        incident = (
            Incident.objects.select_for_update(of=("self",))
            .select_related("organization", "monitor")
            .get(pk=incident_id)
        )
        if incident.status != IncidentStatus.TRIGGERED or incident.suppressed:
            return False
        if incident.monitor_id is not None and incident_is_silenced(incident=incident, at=now):
            return False  # held: the sweep runs the step once the hold is over
        step, repeats = incident.escalation_step, incident.escalation_repeats
        if incident.next_escalation_at is None:
            step = max(0, min(step, len(route_for(incident=incident).steps) - 1))
        _set_walk(incident, step, repeats, now)
    logger.info("escalation expedited", extra={"incident": str(incident_id), "reason": reason})
    return escalation_run_step(
        incident_id=incident_id, due_at=now, step=step, repeats=repeats, now=now
    )
