"""A real `celery worker` process (prefork pool, two children) serves its own /metrics: the
engine's counters move there after it dispatched, checked, opened an incident and notified.

The counters are incremented in the pool's children; only the worker's main process listens,
so the test fails if the children's counts are not merged (PROMETHEUS_MULTIPROC_DIR) or if
no process serves them at all (the web's /metrics never sees a worker's counters)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.alerts.services import channels as channel_services
from apps.monitors.models import Monitor
from apps.monitors.schedule import schedule_set
from healthorch.celery import app
from tests.alerts.support import WEBHOOK_SECRET, serve_receiver
from tests.isolation import configured_broker
from tests.monitors.targets import serve_http
from tests.observability.processes import start_celery, stop, wait_serving
from tests.observability.scrape import scrape, total
from tests.support import free_port, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ENGINE_COUNTERS = {
    # sample name -> labels the flow below must produce
    "scheduler_jobs_scheduled_total": {},
    "monitor_checks_executed_total": {"kind": "http", "outcome": "down"},
    "incidents_created_total": {},
    "notifier_notifications_sent_total": {"channel": "webhook", "outcome": "sent"},
}


def test_a_worker_serves_the_engine_counters_it_moved(org, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"

    # The worker is a process of its own: it consumes from the broker the settings name.
    with configured_broker(), serve_http() as target, serve_receiver() as receiver:
        channel_services.channel_create(
            org=org,
            kind="webhook",
            name="ops hook",
            config={"url": receiver.url("/hook"), "secret": WEBHOOK_SECRET},
        )
        monitor = Monitor.objects.create(
            organization=org,
            name="api",
            slug="api",
            kind="http",
            config={"url": target.route("/down", status=503)},
            failure_threshold=1,
            timeout_seconds=2,
        )
        schedule_set(monitor, timezone.now() - timedelta(seconds=1))
        # Messages other tests left on the real broker would keep this worker busy.
        with app.connection_for_write() as conn:
            for queue in ("default", "checks.default"):
                conn.default_channel.queue_purge(queue)

        proc = start_celery(
            [
                "worker",
                "--pool=prefork",
                "--concurrency=2",
                "--queues=default,checks.default",
                "--without-gossip",
                "--without-mingle",
            ],
            metrics_port=port,
            multiproc_dir=tmp_path / "prometheus",
        )
        try:
            wait_serving(proc, url, "the worker's metrics port")
            before = scrape(url)
            assert {
                name: total(before, name, **lb) for name, lb in ENGINE_COUNTERS.items()
            } == dict.fromkeys(ENGINE_COUNTERS, 0)

            # What beat's `dispatch-due-checks` entry sends every 2 s, sent once.
            app.send_task("apps.monitors.tasks.dispatch_due_checks")
            wait_for(lambda: len(receiver.delivered) >= 1, 240, "the webhook notification")

            seen: dict[str, float] = {}

            def moved() -> bool:
                text = scrape(url)
                seen.update({name: total(text, name, **lb) for name, lb in ENGINE_COUNTERS.items()})
                return all(value >= 1 for value in seen.values())

            try:
                wait_for(moved, 30, "the counters on the worker's /metrics")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; last seen: {seen}") from None
        finally:
            stderr = stop(proc)
    assert target.hits["/down"] >= 1
    assert "Traceback" not in stderr, stderr
