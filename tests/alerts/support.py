"""Real peers and incident helpers for the alerts tests.

- `Receiver`: an HTTP server on 127.0.0.1 (tests.monitors.targets) that verifies each
  webhook's X-Healthorch-Signature and answers from a script (e.g. 500, 500, 500, then 200).
- `Nudges`: the task queue as the alerts services see it. Services enqueue through
  `apps.alerts.services.outbox._send`; here that records the task instead of publishing it
  to the broker, and `drain()` runs the recorded tasks in this process, so a test can drive
  the whole path step by step with controlled time. The real broker and worker are exercised
  by test_worker.py.
- `open_incident`, `acknowledge`, `resolve`: what apps.incidents does at the seam (write the
  Incident / IncidentEvent rows and publish the event in the same transaction), done with the
  models directly so these tests do not depend on the incidents services.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web
from django.db import transaction
from django.utils import timezone

from apps.core.signing import verify_signature
from apps.incidents import events
from apps.incidents.models import EventKind, Incident, IncidentEvent, IncidentStatus
from tests.monitors.targets import HttpTarget, Seen, _serve_app

WEBHOOK_SECRET = "receiver-secret-0123456789abcdef"


class Receiver(HttpTarget):
    """Answers `script` statuses in order (then `default`), and keeps the verified bodies of
    the requests it accepted with a 2xx in `delivered`."""

    def __init__(self) -> None:
        super().__init__("http")
        # Each entry: a status, or (status, extra response headers).
        self.script: list[int | tuple[int, dict[str, str]]] = []
        self.default = 200
        self.delivered: list[dict[str, Any]] = []
        self.bad_signatures = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(Seen(request.method, request.path, headers, body))
        answer = self.script.pop(0) if self.script else self.default
        status, extra = answer if isinstance(answer, tuple) else (answer, {})
        signature = headers.get("x-healthorch-signature")
        if signature is not None and not verify_signature(
            WEBHOOK_SECRET, headers.get("x-healthorch-timestamp"), body, signature
        ):
            self.bad_signatures += 1
            return web.Response(status=401, text="bad signature")
        if 200 <= status < 300:
            self.delivered.append(json.loads(body) if body else {})
        return web.Response(status=status, text="ok", headers=extra)


@contextmanager
def serve_receiver() -> Iterator[Receiver]:
    with _serve_app(Receiver(), None) as receiver:
        yield receiver


@dataclass
class Nudges:
    """Tasks the services enqueued, in order: (task name, args, due time)."""

    queued: list[tuple[str, list[Any], Any]] = field(default_factory=list)
    capture: Any = None

    def record(self, task_name: str, args: list[Any], countdown: float | None = None) -> None:
        due = timezone.now() + timedelta(seconds=countdown or 0)
        self.queued.append((task_name, list(args), due))

    def names(self) -> list[str]:
        return [name for name, _, _ in self.queued]

    def drain(self, *, limit: int = 10_000) -> int:
        """Run the queued tasks that are due (and those they enqueue, when due) until none
        is left; returns how many ran. Tasks with a countdown wait until the clock (moved by
        time-machine) reaches them, as a broker's ETA would."""
        from apps.alerts import tasks

        ran = 0
        while ran < limit:
            now = timezone.now()
            index = next((i for i, (_, _, due) in enumerate(self.queued) if due <= now), None)
            if index is None:
                return ran
            name, args, _ = self.queued.pop(index)
            with self.capture(execute=True):
                getattr(tasks, name)(*args)
            ran += 1
        raise AssertionError("tasks kept enqueueing tasks")


def opened_event(incident: Incident, *, notify: bool = True) -> IncidentEvent:
    return IncidentEvent.objects.create(
        incident=incident,
        organization_id=incident.organization_id,
        kind=EventKind.OPENED,
        at=incident.opened_at,
        data={"notify": notify},
    )


def open_incident(capture, org, *, severity: str = "error", title: str = "API is down", **fields):
    """Open an incident the way apps.incidents does: rows + publish in one transaction."""
    now = timezone.now()
    with capture(execute=True), transaction.atomic():
        incident = Incident.objects.create(
            organization=org,
            rule=fields.pop("rule", "service_down"),
            title=title,
            severity=severity,
            opened_at=now,
            last_seen_at=now,
            **fields,
        )
        events.publish(incident=incident, event=opened_event(incident))
    incident.refresh_from_db()
    return incident


def _move(capture, incident: Incident, *, status: str, stamped: str, data: dict, actor=None, **row):
    """Move the incident to `status` (`stamped` set to now) and publish the event of that name,
    in one transaction as the state machine does."""
    now = timezone.now()
    with capture(execute=True), transaction.atomic():
        Incident.objects.filter(pk=incident.pk).update(
            status=status, next_escalation_at=None, **{stamped: now}, **row
        )
        incident.refresh_from_db()
        event = IncidentEvent.objects.create(
            incident=incident,
            organization_id=incident.organization_id,
            kind=EventKind(status),  # the event bears the status's name
            at=now,
            actor=actor,
            data=data,
        )
        events.publish(incident=incident, event=event)
    return event


def acknowledge(capture, incident: Incident, *, user=None) -> None:
    _move(
        capture,
        incident,
        status=IncidentStatus.ACKNOWLEDGED,
        stamped="acknowledged_at",
        data={"notify": False},
        actor=user,
        acknowledged_by=user,
    )


def resolve(capture, incident: Incident) -> IncidentEvent:
    return _move(
        capture,
        incident,
        status=IncidentStatus.RESOLVED,
        stamped="resolved_at",
        data={"notify": True, "auto": True},
    )


def sweep(capture, nudges) -> int:
    """One escalation sweep with its on-commit deliveries run and the nudged tasks drained."""
    from apps.alerts.services import escalation

    with capture(execute=True):
        ran = escalation.escalation_sweep()
    nudges.drain()
    return ran


def paths(receiver) -> list[str]:
    """The paths the webhook receiver was asked for, in order (one per channel)."""
    return [r.path for r in receiver.requests]
