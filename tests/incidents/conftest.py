"""Helpers for incident tests: monitors driven through the real state machine
(apps.monitors.engine.results_record with CheckOutcome objects, as a worker records a batch),
and a listener on apps.incidents.events standing in for apps.alerts to see what is published."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pytest
from django.utils import timezone

from apps.incidents import events
from apps.monitors import engine
from apps.monitors.checkers.base import CheckOutcome, ErrorClass, Outcome


def down(**extra) -> CheckOutcome:
    return CheckOutcome(
        Outcome.DOWN, error_class=ErrorClass.CONNECTION, error_message="refused", **extra
    )


def up(ms: float = 20, **extra) -> CheckOutcome:
    return CheckOutcome(Outcome.UP, response_time_ms=ms, **extra)


def feed(monitor, *outcomes: CheckOutcome, at: datetime | None = None) -> None:
    """Record each outcome as its own check of the monitor, in order (one batch each)."""
    for outcome in outcomes:
        engine.results_record(
            monitors=[monitor],
            outcomes=[outcome],
            region="default",
            checked_at=at or timezone.now(),
        )
    monitor.refresh_from_db()


@dataclass
class Published:
    incident: object
    kind: str
    notify: bool
    data: dict
    event_id: int | None


@pytest.fixture
def published():
    """Every event published to apps.incidents.events, in order."""
    seen: list[Published] = []

    def listener(*, incident, event):
        seen.append(
            Published(incident, event.kind, event.data.get("notify"), dict(event.data), event.pk)
        )

    events.incident_event.connect(listener)
    yield seen
    events.incident_event.disconnect(listener)


def notified(published) -> list[tuple[str, str]]:
    """(incident rule, event kind) of what people would hear about."""
    return [(p.incident.rule, p.kind) for p in published if p.notify]
