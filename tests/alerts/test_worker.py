"""Through the real broker (filesystem locally, Redis in CI) to a real Celery worker: the
outbox commits, the task is enqueued on commit, retries come back through the broker."""

from __future__ import annotations

import threading

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connection

from apps.alerts.models import Notification, NotificationStatus
from apps.alerts.services import delivery, outbox
from healthorch.celery import app
from tests.alerts.conftest import make_webhook
from tests.alerts.support import open_incident
from tests.support import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _real_capture(execute=True):
    """No on-commit capture here: the transactions really commit."""
    from contextlib import nullcontext

    return nullcontext()


@pytest.fixture
def org_on_worker(org):
    app.loader.import_default_modules()
    return org


def test_a_worker_retries_through_the_broker_and_delivers_once(org_on_worker, receiver, settings):
    settings.ALERTS_RETRY_BASE_SECONDS = 0.3  # seconds, not minutes, for the test
    make_webhook(org_on_worker, receiver)
    receiver.script = [500, 500, 500]

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        incident = open_incident(_real_capture, org_on_worker)
        wait_for(lambda: len(receiver.delivered) == 1, 40, "the webhook delivery")
        wait_for(
            lambda: Notification.objects.get(incident=incident).status == NotificationStatus.SENT,
            10,
            "the row marked sent",
        )

    n = Notification.objects.get(incident=incident)
    assert (n.attempts, n.attempt_rows.count()) == (4, 4)
    assert len(receiver.requests) == 4


def test_two_deliveries_of_one_row_racing_send_it_once(org, receiver, settings, monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; the race needs concurrent transactions")
    monkeypatch.setattr(outbox, "_send", lambda *args, **kwargs: None)  # the threads deliver
    make_webhook(org, receiver)
    incident = open_incident(_real_capture, org)
    n = Notification.objects.get(incident=incident)
    barrier = threading.Barrier(4)
    results = []

    def run():
        barrier.wait()
        try:
            results.append(delivery.notification_deliver(notification_id=n.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)

    assert sorted(results, key=str) == [None, None, None, "sent"]
    assert len(receiver.delivered) == 1
