"""Late acknowledgement fits the broker's visibility timeout (no live task is handed out twice).

On Redis a message a worker took but never acknowledged goes back to its queue after
CELERY_VISIBILITY_TIMEOUT_SECONDS; that is what brings a killed worker's batch back within
seconds. The price: a late-acknowledged task still running (or still waiting for its countdown)
when the timeout passes is handed to a second worker. These tests hold every task to that
budget; the chaos scenarios (test_worker_killed.py) measure the redelivery itself.
"""

from __future__ import annotations

import pytest
from django.conf import settings

from healthorch.celery import VISIBILITY_MARGIN_SECONDS, app, longest_delay

REDIS_OPTIONS = {"visibility_timeout": settings.CELERY_VISIBILITY_TIMEOUT_SECONDS}


@pytest.fixture
def redis_transport_options():
    before = app.conf.broker_transport_options
    # Merged, not replaced: a connection pool made meanwhile keeps the real broker's folders.
    app.conf.broker_transport_options = {**(before or {}), **REDIS_OPTIONS}
    yield
    app.conf.broker_transport_options = before


def _product_tasks():
    app.loader.import_default_modules()
    return [t for name, t in sorted(app.tasks.items()) if name.startswith("apps.")]


def _acks_late(task) -> bool:
    return task.acks_late if task.acks_late is not None else app.conf.task_acks_late


@pytest.mark.django_db  # importing task modules runs Django's checks (dj-stripe's read rows)
def test_every_late_acknowledged_task_finishes_within_the_visibility_timeout():
    timeout = settings.CELERY_VISIBILITY_TIMEOUT_SECONDS
    tasks = _product_tasks()
    assert len(tasks) > 10
    too_long = [
        (t.name, t.time_limit or app.conf.task_time_limit)
        for t in tasks
        if _acks_late(t)
        and (t.time_limit or app.conf.task_time_limit) + VISIBILITY_MARGIN_SECONDS >= timeout
    ]
    assert too_long == [], f"late-acknowledged tasks that may outlive {timeout} s: {too_long}"
    # The check batches are among them: a killed worker's batch must come back.
    assert _acks_late(app.tasks["apps.monitors.tasks.run_checks"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("task_name", "countdown", "sent_with"),
    [
        # A notification's retry an hour out: a nudge within the budget (the row says when it
        # is due, and the sweep sends it then).
        ("apps.alerts.tasks.deliver_notification", 3600.0, 90 - 60 - 5),
        ("apps.alerts.tasks.deliver_notification", 10.0, 10.0),
        ("apps.healing.tasks.healing_verify", 600.0, 90 - 80 - 5),
        # Acknowledged on receipt: nothing to fit.
        ("apps.monitors.tasks.rollup_results", 3600.0, 3600.0),
    ],
)
def test_a_countdown_is_shortened_to_fit_the_visibility_timeout(
    redis_transport_options, task_name, countdown, sent_with
):
    assert settings.CELERY_VISIBILITY_TIMEOUT_SECONDS == 90  # the figures above assume it
    app.loader.import_default_modules()
    task = app.tasks[task_name]
    longest = longest_delay(task)
    assert (countdown if longest is None else min(countdown, longest)) == sent_with


@pytest.mark.django_db
def test_the_filesystem_broker_keeps_every_countdown():
    app.loader.import_default_modules()
    before = app.conf.broker_transport_options
    app.conf.broker_transport_options = {"data_folder_in": "/nowhere"}
    try:
        assert longest_delay(app.tasks["apps.alerts.tasks.deliver_notification"]) is None
    finally:
        app.conf.broker_transport_options = before


@pytest.mark.django_db
def test_a_message_sent_with_a_long_countdown_carries_the_shortened_eta(redis_transport_options):
    """Through the real publishing path, onto an in-memory broker (no worker needed)."""
    from datetime import UTC, datetime

    app.loader.import_default_modules()
    task = app.tasks["apps.alerts.tasks.deliver_notification"]
    with app.connection_for_write("memory://") as conn:
        sent_at = datetime.now(UTC)
        task.apply_async(["n-1"], countdown=3600, producer=conn.Producer(), queue="budget-test")
        message = conn.SimpleQueue("budget-test").get(timeout=2)
    eta = datetime.fromisoformat(message.headers["eta"])
    assert (eta - sent_at).total_seconds() == pytest.approx(90 - 60 - 5, abs=2)
