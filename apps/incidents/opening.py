"""Incidents opening, folding and resolving by themselves (batched: a thousand monitors down at
once is a few statements), custom incidents, and `timeline_record`, the one way a single
timeline line is written and published.

These are the writes of the state machine (machine.py) and of the sweeps (sweeps.py). They live
beside them rather than in services/ because services/configuration.py runs the maintenance
sweep when a window changes, so a module under services/ that the sweeps import would close a
circle through services/__init__.py; apps.incidents.services re-exports them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from apps.core.actors import api_key_ref
from apps.core.db import bulk_update_values
from apps.incidents import events
from apps.incidents.models import (
    CUSTOM_RULE,
    OPEN_STATUSES,
    EventKind,
    Incident,
    IncidentEvent,
    IncidentStatus,
)
from apps.monitors.models import Monitor
from apps.tenants.models import ApiKey, Organization
from healthorch import metrics

logger = logging.getLogger(__name__)


def timeline_record(
    incident: Incident,
    kind: str,
    *,
    at: datetime,
    notify: bool,
    actor: AbstractBaseUser | None = None,
    actor_key: dict[str, str] | None = None,
    note: str = "",
    **data: Any,
) -> IncidentEvent:
    """One line of the timeline, by `actor` (a user), `actor_key` (an API key's snapshot,
    `apps.core.actors.api_key_ref`) or, with neither, the system; published to the seams."""
    event = IncidentEvent.objects.create(
        incident=incident,
        organization_id=incident.organization_id,
        kind=kind,
        at=at,
        actor=actor,
        actor_key=actor_key if actor is None else None,
        note=note,
        data={"notify": notify, **data},
    )
    events.publish(incident=incident, event=event)
    return event


def _count_opened(*severities: str) -> None:
    # After commit: a rolled-back open must not count. One callback for a whole batch.
    counts = Counter(severities)

    def count() -> None:
        for severity, n in counts.items():
            metrics.incidents_created_total.labels(severity=severity).inc(n)

    transaction.on_commit(count)


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


def open_for(keys: Iterable[tuple[Any, str]]) -> dict[tuple[Any, str], Incident]:
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
    existing = open_for(keyed)
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
        existing.update(open_for(lost))
    incidents_seen_many(
        [(existing[key], keyed[key].at, None, {}) for key in keyed if key in existing]
    )
    opened = [(key, i) for key, i in fresh.items() if i.pk in inserted]
    events_ = [
        _opened_event(
            i,
            notify=not keyed[key].suppressed_by,
            **({"suppressed_by": keyed[key].suppressed_by} if keyed[key].suppressed_by else {}),
        )
        for key, i in opened
    ]
    IncidentEvent.objects.bulk_create(events_)
    # One call for the batch: the listeners write what the whole batch needs at once.
    events.publish_many(
        [(incident, event) for (_, incident), event in zip(opened, events_, strict=True)]
    )
    if opened:
        _count_opened(*(incident.severity for _, incident in opened))
    for _, incident in opened:
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


def _opened_event(incident: Incident, *, notify: bool, **data: Any) -> IncidentEvent:
    """The `opened` event of an incident inserted in bulk (not saved): at its opening, with
    whether it notifies, its rule and severity, and `data`."""
    return IncidentEvent(
        incident=incident,
        organization_id=incident.organization_id,
        kind=EventKind.OPENED,
        at=incident.opened_at,
        data={"notify": notify, "rule": incident.rule, "severity": incident.severity, **data},
    )


def incidents_open_detached(incidents: list[Incident]) -> None:
    """Open incidents that belong to no monitor (the error_signature rule's, over log
    signatures): insert them and their notified `opened` events, publish, count. The caller
    deduplicates: it holds the lock that makes it the only opener of its rule."""
    if not incidents:
        return
    Incident.objects.bulk_create(incidents)
    rows = [_opened_event(i, notify=not i.suppressed) for i in incidents]
    IncidentEvent.objects.bulk_create(rows)
    events.publish_many(list(zip(incidents, rows, strict=True)))
    _count_opened(*(i.severity for i in incidents))
    logger.info("incidents opened", extra={"count": len(incidents), "rule": incidents[0].rule})


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


def open_locked(monitor_id: object, rule: str) -> Incident | None:
    return open_for([(monitor_id, rule)]).get((monitor_id, rule))


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
    events.publish_many(grown + created)


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
    events.publish_many(list(zip(locked, rows, strict=True)))
    logger.info("incidents resolved", extra={"count": len(locked), "auto": True})
    return locked


def incident_create_custom(
    *,
    org: Organization,
    title: str,
    severity: str,
    description: str = "",
    actor: AbstractBaseUser | None = None,
    api_key: ApiKey | None = None,
) -> Incident:
    """Raise an incident by hand (or from another system through the API, as a user or an
    API key); notified."""
    now = timezone.now()
    key = api_key_ref(api_key) if actor is None else None
    with transaction.atomic():
        incident = Incident.objects.create(
            organization=org,
            monitor=None,
            rule=CUSTOM_RULE,
            title=title,
            description=description,
            severity=severity,
            cause={
                "raised_by": "api",
                "user": str(actor.pk) if actor else None,
                **({"api_key": key} if key else {}),
            },
            opened_at=now,
            last_seen_at=now,
        )
        _count_opened(severity)
        timeline_record(
            incident,
            EventKind.OPENED,
            at=now,
            notify=True,
            actor=actor,
            actor_key=key,
            rule=CUSTOM_RULE,
        )
    return incident
