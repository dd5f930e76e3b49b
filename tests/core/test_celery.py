import threading

import pytest
from celery.contrib.testing.worker import start_worker

from healthorch.celery import app
from healthorch.logging import request_id_var, task_id_var
from healthorch.schedules import BEAT_SCHEDULE

seen: list[tuple[str, str]] = []
done = threading.Event()


@app.task(name="tests.record_context")
def record_context() -> None:
    seen.append((request_id_var.get(), task_id_var.get()))
    done.set()


@pytest.mark.django_db  # importing task modules runs Django's checks (dj-stripe's read rows)
def test_every_periodic_job_names_a_registered_task():
    app.loader.import_default_modules()
    assert BEAT_SCHEDULE
    for name, entry in BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks, name
    assert app.conf.beat_schedule == BEAT_SCHEDULE


def test_beat_uses_the_database_scheduler():
    assert app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"


@pytest.mark.django_db(transaction=True)
def test_a_task_runs_on_a_real_worker_with_the_request_id_of_its_caller():
    """Through the configured broker (filesystem locally, Redis in CI) to an in-thread worker."""
    seen.clear()
    done.clear()
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        token = request_id_var.set("req-from-api")
        try:
            result = record_context.apply_async()
        finally:
            request_id_var.reset(token)
        assert done.wait(timeout=20), "the worker never ran the task"
    assert seen == [("req-from-api", result.id)]
