"""A real `celery beat` process serves its metrics port, with the platform's backlogs read
from the database at each scrape."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.monitors.models import Monitor
from apps.monitors.schedule import schedule_set
from tests.observability.processes import start_celery, stop, wait_serving
from tests.observability.scrape import scrape, total
from tests.support import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def test_beat_serves_the_checks_waiting_for_a_dispatcher(org, other_org, tmp_path):
    for owner in (org, other_org):
        monitor = Monitor.objects.create(
            organization=owner, name="api", slug="api", kind="http", config={"url": "http://x/"}
        )
        schedule_set(monitor, timezone.now() - timedelta(seconds=90))
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    proc = start_celery(
        [
            "beat",
            "--scheduler=django_celery_beat.schedulers:DatabaseScheduler",
            f"--schedule={tmp_path / 'beat-schedule'}",
            "--pidfile=",
        ],
        metrics_port=port,
        multiproc_dir=tmp_path / "prometheus",
        # What beat enqueues goes to a broker folder of its own; no worker consumes it here,
        # so the monitors stay due.
        HEALTHORCH_VAR_DIR=str(tmp_path),
        CELERY_BROKER_URL="filesystem://",
    )
    try:
        wait_serving(proc, url, "beat's metrics port")
        text = scrape(url)
        again = scrape(url)  # each scrape reads afresh, on a connection it closes
    finally:
        stderr = stop(proc)
    assert total(text, "scheduler_checks_due") == 2
    assert total(text, "scheduler_oldest_due_seconds") >= 90
    assert total(again, "scheduler_oldest_due_seconds") >= total(
        text, "scheduler_oldest_due_seconds"
    )
    assert total(text, "notifier_outbox_due") == 0
    assert "Traceback" not in stderr, stderr
