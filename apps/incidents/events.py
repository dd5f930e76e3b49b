"""The seam between incidents and alerts.

Incidents write IncidentEvent rows; whoever must react (apps.alerts: notify, escalate, send the
resolved notice; apps.healing) registers a listener here from its AppConfig.ready.
Listeners run inside the transaction that wrote the events, so they can write their own rows
(the notification outbox) atomically with them, and must defer side effects (enqueueing tasks,
network calls) with `transaction.on_commit`. Incidents never import alerts.

Two kinds of listener: a batch listener (`on_incident_events`) hears a whole batch in one call
(a fold that opened a thousand incidents publishes them together, so the listener can write
their notifications in one insert), a per-event listener (`on_incident_event`) hears each event
of it in order, after the batch listeners.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from apps.core.plugins import add_listener

if TYPE_CHECKING:
    from apps.incidents.models import Incident, IncidentEvent

IncidentListener = Callable[..., None]  # (incident=, event=)
BatchListener = Callable[..., None]  # (items=[(incident, event), ...])
_LISTENERS: list[IncidentListener] = []
_BATCH_LISTENERS: list[BatchListener] = []


def on_incident_event(listener: IncidentListener) -> IncidentListener:
    return add_listener(_LISTENERS, listener)


def on_incident_events(listener: BatchListener) -> BatchListener:
    """Hear every published batch at once: `listener(items=[(incident, event), ...])`."""
    return add_listener(_BATCH_LISTENERS, listener)


def publish(*, incident: Incident, event: IncidentEvent) -> None:
    """Tell every listener about one event just written (call inside its transaction)."""
    publish_many([(incident, event)])


def publish_many(items: Sequence[tuple[Incident, IncidentEvent]]) -> None:
    """Tell every listener about events just written together, in order (call inside their
    transaction)."""
    if not items:
        return
    items = list(items)
    for batch_listener in _BATCH_LISTENERS:
        batch_listener(items=items)
    for incident, event in items:
        for listener in _LISTENERS:
            listener(incident=incident, event=event)
