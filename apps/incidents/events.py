"""The seam between incidents and alerts.

Incidents write IncidentEvent rows; whoever must react (apps.alerts: notify, escalate, send the
resolved notice; later apps.healing) registers a listener here from its AppConfig.ready.
Listeners run inside the transaction that wrote the event, so they can write their own rows
(the notification outbox) atomically with it, and must defer side effects (enqueueing tasks,
network calls) with `transaction.on_commit`. Incidents never import alerts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apps.incidents.models import Incident, IncidentEvent

IncidentListener = Callable[..., None]  # (incident=, event=)
_LISTENERS: list[IncidentListener] = []


def on_incident_event(listener: IncidentListener) -> IncidentListener:
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)
    return listener


def publish(*, incident: Incident, event: IncidentEvent) -> None:
    """Tell every listener about an event just written (call inside its transaction)."""
    for listener in _LISTENERS:
        listener(incident=incident, event=event)
