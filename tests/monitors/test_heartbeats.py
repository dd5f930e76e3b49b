from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from apps.monitors import heartbeats, services
from apps.monitors.models import HeartbeatPing, Monitor, MonitorStatus
from tests.factories import make_monitor

pytestmark = pytest.mark.django_db


def test_a_success_ping_marks_the_job_up_and_sets_the_deadline(client, job):
    now = timezone.now()
    with time_machine.travel(now, tick=False):
        response = client.get(f"/ping/{job.ping_token}")
    assert response.status_code == 200
    assert response.content == b"OK\n"
    job.refresh_from_db()
    assert job.status == MonitorStatus.UP
    assert job.next_check_at == now + timedelta(seconds=3900)


def test_start_then_success_records_the_run_duration(client, job):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client.post(f"/ping/{job.ping_token}/start")
    with time_machine.travel(start + timedelta(seconds=42), tick=False):
        client.post(f"/ping/{job.ping_token}", data=b"backup done", content_type="text/plain")
    ping = HeartbeatPing.objects.filter(monitor=job, kind="success").get()
    assert ping.duration_ms == 42_000
    assert ping.body == "backup done"


def test_fail_and_non_zero_exit_codes_are_failures(client, job):
    client.get(f"/ping/{job.ping_token}/fail")
    client.get(f"/ping/{job.ping_token}/3")
    job.refresh_from_db()
    assert job.status == MonitorStatus.DOWN
    assert list(
        HeartbeatPing.objects.filter(monitor=job)
        .order_by("received_at")
        .values_list("kind", "exit_code")
    ) == [("fail", None), ("fail", 3)]
    client.get(f"/ping/{job.ping_token}/0")
    job.refresh_from_db()
    assert job.status == MonitorStatus.UP


def test_bodies_are_kept_up_to_10_kb(client, job):
    client.post(f"/ping/{job.ping_token}", data=b"x" * 20_000, content_type="text/plain")
    assert len(HeartbeatPing.objects.get(monitor=job).body) == 10 * 1024


def test_unknown_tokens_and_actions_are_404(client, job):
    assert client.get("/ping/00000000-0000-0000-0000-000000000000").status_code == 404
    assert client.get(f"/ping/{job.ping_token}/explode").status_code == 404
    assert client.get(f"/ping/{job.ping_token}/256").status_code == 404


def test_pings_are_rate_limited_per_monitor(client, job):
    with time_machine.travel("2026-05-01T12:00:00Z", tick=False):
        for _ in range(120):
            assert client.get(f"/ping/{job.ping_token}").status_code == 200
        limited = client.get(f"/ping/{job.ping_token}")
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0


def test_an_overdue_job_goes_down_once(client, job):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client.get(f"/ping/{job.ping_token}")
    assert heartbeats.sweep_overdue(now=start + timedelta(seconds=3899)) == 0
    assert heartbeats.sweep_overdue(now=start + timedelta(seconds=3901)) == 1
    job.refresh_from_db()
    assert job.status == MonitorStatus.DOWN
    assert heartbeats.sweep_overdue(now=start + timedelta(hours=5)) == 0


def test_cron_schedules_use_their_time_zone(org):
    cron = {"schedule": "0 3 * * *", "timezone": "Europe/Paris", "grace_seconds": 600}
    monitor = make_monitor(org, "paris 3am", kind="heartbeat", config=cron)
    last = datetime(2026, 7, 1, 1, 5, tzinfo=UTC)
    deadline = heartbeats.deadline_after(monitor, last)
    # 03:00 in Paris in July is 01:00 UTC; the next one after 01:05 UTC is the next day.
    assert deadline.isoformat() == "2026-07-02T01:10:00+00:00"


def test_paused_jobs_are_not_swept(client, job):
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client.get(f"/ping/{job.ping_token}")
    services.monitor_pause(monitor=job)
    assert heartbeats.sweep_overdue(now=start + timedelta(days=1)) == 0
    assert Monitor.objects.get(pk=job.pk).status == MonitorStatus.PAUSED


def test_a_ping_is_one_statement_on_postgresql(client, job, django_assert_max_num_queries):
    from django.db import connection

    client.get(f"/ping/{job.ping_token}")  # warm
    # PostgreSQL: the one-statement path (lock, count, insert, update, deadline). SQLite runs
    # the reference path: savepoint, lock, insert, update, deadline upsert, release.
    with django_assert_max_num_queries(1 if connection.vendor == "postgresql" else 6):
        assert client.get(f"/ping/{job.ping_token}").status_code == 200
