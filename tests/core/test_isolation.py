"""The suite's own promise (tests/isolation.py): what one test leaves on the broker or the
Celery app never reaches the next. Each case runs two "tests" back to back as two namespaces,
on the configured broker (filesystem locally, Redis in CI) with a real in-thread worker."""

from __future__ import annotations

import pytest
from celery.contrib.testing.worker import start_worker

from healthorch.celery import app
from tests.isolation import broker_namespace
from tests.support import wait_for

ran: list[str] = []


@app.task(name="tests.isolation_record")
def record(label: str) -> None:
    ran.append(label)


def _worker(**options):
    return start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10, **options)


@pytest.mark.django_db(transaction=True)
def test_a_message_one_test_left_never_reaches_the_next_tests_worker(tmp_path):
    ran.clear()
    with broker_namespace(tmp_path):
        record.apply_async(args=["left behind"])  # nobody consumes it
    with broker_namespace(tmp_path), _worker():
        record.apply_async(args=["mine"])
        wait_for(lambda: "mine" in ran, 20, "the task")
    assert ran == ["mine"]  # one queue would have run the older message first


@pytest.mark.django_db(transaction=True)
def test_a_worker_for_a_named_queue_leaves_the_next_worker_on_the_default_queue(tmp_path):
    ran.clear()
    with broker_namespace(tmp_path), _worker(queues=["checks.eu"], hostname="eu@test"):
        pass
    assert list(app.amqp.queues.consume_from) == [app.conf.task_default_queue]
    with broker_namespace(tmp_path), _worker():
        record.apply_async(args=["default"])
        wait_for(lambda: "default" in ran, 20, "the task on the default queue")
