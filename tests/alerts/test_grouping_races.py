"""Grouping under concurrency: a channel's group flush (the task) and the notifications sweep
(which flushes every channel whose hold is over) running at the same moment in two threads,
each with its own connection to the real database, never split a batch into two messages nor
send it twice.

PostgreSQL only: SQLite serialises writers (IMMEDIATE transactions), so the two can never
overlap there and the test could not fail.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from apps.alerts import messages
from apps.alerts.models import Notification, NotificationKind, NotificationStatus
from apps.alerts.services import delivery, outbox
from apps.incidents.models import Incident
from tests.alerts.conftest import make_email

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent writers"),
]

ROUNDS = 12
HELD = 40


def _held_batch(org, channel, round_: int) -> list:
    """HELD opened notices on the channel, held for grouping and past their hold by more than
    the sweep's grace, so the sweep flushes them too."""
    now = timezone.now()
    common = {"organization": org, "severity": "error", "opened_at": now, "last_seen_at": now}
    incidents = Incident.objects.bulk_create(
        Incident(rule=f"r{round_}-{i}", title=f"svc {round_}-{i} is down", **common)
        for i in range(HELD)
    )
    rows = []
    for i, incident in enumerate(incidents):
        rows.append(
            Notification(
                organization=org,
                channel=channel,
                incident=incident,
                kind=NotificationKind.OPENED,
                severity="error",
                idempotency_key=f"held:{round_}:{i}",
                payload={"incident_id": str(incident.pk), "title": incident.title},
                hold_until=now - timedelta(seconds=delivery.SWEEP_GRACE_SECONDS + 5),
                next_attempt_at=now + timedelta(hours=1),
            )
        )
    Notification.objects.bulk_create(rows)
    return [r.pk for r in rows]


def _together(*jobs, finished: threading.Event | None = None) -> list[BaseException]:
    """Run each job in its own thread, released at the same instant; their errors."""
    start = threading.Barrier(len(jobs))
    errors: list[BaseException] = []

    def run(job):
        try:
            start.wait()
            job()
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)
        finally:
            connections.close_all()
            if finished is not None:
                finished.set()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


@pytest.fixture
def nudged(monkeypatch):
    """The broker is not under test: the rows are the truth, so the delivery nudges are only
    recorded (the real worker path is tests/alerts/test_worker.py)."""
    sent: list = []
    monkeypatch.setattr(outbox, "_send", lambda *args: sent.append(args))
    return sent


def _assert_sent_whole_and_once(channel, batch, round_) -> None:
    groups = list(Notification.objects.filter(channel=channel, is_group=True))
    assert len(groups) == 1, f"round {round_}: the batch went out as {len(groups)} groups"
    members = Notification.objects.filter(pk__in=batch)
    assert set(members.values_list("status", "group_id")) == {
        (NotificationStatus.GROUPED, groups[0].pk)
    }, f"round {round_}: the batch was split"
    assert groups[0].payload["extra"]["count"] == HELD


def test_a_flush_and_the_sweep_released_together_send_each_batch_whole_and_once(org, nudged):
    for round_ in range(ROUNDS):
        channel = make_email(org, name=f"ops {round_}")
        batch = _held_batch(org, channel, round_)
        errors = _together(
            lambda pk=channel.pk: outbox.group_flush(channel_id=pk), delivery.notifications_sweep
        )
        assert errors == []
        _assert_sent_whole_and_once(channel, batch, round_)


def test_the_sweep_finding_a_batch_a_flush_holds_leaves_it_to_that_flush(org, nudged, monkeypatch):
    """The overlap made certain: whichever of the two reaches the batch's message first waits,
    inside its transaction, until the other has finished or reached the same point."""
    channel = make_email(org, name="ops")
    batch = _held_batch(org, channel, 0)
    real_payload = messages.group_payload
    first = threading.Lock()
    second_arrived, one_finished = threading.Event(), threading.Event()

    def payload_after_the_other(**kwargs):
        if first.acquire(blocking=False):
            deadline = time.monotonic() + 30  # bounded: a hung peer fails, never hangs
            while not (second_arrived.is_set() or one_finished.is_set()):
                assert time.monotonic() < deadline, "the other job neither ran nor finished"
                time.sleep(0.01)
        else:
            second_arrived.set()
        return real_payload(**kwargs)

    monkeypatch.setattr(messages, "group_payload", payload_after_the_other)
    errors = _together(
        lambda: outbox.group_flush(channel_id=channel.pk),
        delivery.notifications_sweep,
        finished=one_finished,
    )
    assert errors == []
    _assert_sent_whole_and_once(channel, batch, 0)
