"""The seam between incidents and alerts.

Incidents write IncidentEvent rows and publish them here; whoever must react (apps.alerts:
notify, escalate, send the resolved notice; apps.healing) is connected in healthorch/wiring.py.
Listeners run inside the transaction that wrote the events, so they can write their own rows
(the notification outbox) atomically with them, and must defer side effects (enqueueing tasks,
network calls) with `transaction.on_commit`. Incidents never import alerts.

Two seams: a batch listener (`incident_events`) hears a whole batch in one call
(a fold that opened a thousand incidents publishes them together, so the listener can write
their notifications in one insert), a per-event listener (`incident_event`) hears each event
of it in order, after the batch listeners.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from apps.core.events import Seam

if TYPE_CHECKING:
    from apps.incidents.models import Incident, IncidentEvent

#: each event of a published batch, in order, after the batch listeners: (incident=, event=)
incident_event = Seam("incidents.incident_event")

#: a whole published batch at once: (items=[(incident, event), ...]). A fold that opened a
#: thousand incidents publishes them together, so a listener can write their notifications in
#: one insert.
incident_events = Seam("incidents.incident_events")


def publish(*, incident: Incident, event: IncidentEvent) -> None:
    """Tell every listener about one event just written (call inside its transaction)."""
    publish_many([(incident, event)])


def publish_many(items: Sequence[tuple[Incident, IncidentEvent]]) -> None:
    """Tell every listener about events just written together, in order (call inside their
    transaction)."""
    if not items:
        return
    items = list(items)
    incident_events.send(items=items)
    if incident_event.listeners:
        for incident, event in items:
            incident_event.send(incident=incident, event=event)
