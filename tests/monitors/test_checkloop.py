"""The process's check loop and the batch's compare-and-set fold, against real targets and the
real database."""

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.monitors import engine
from apps.monitors.checkers.base import CheckOutcome, CheckSpec, Outcome
from apps.monitors.models import CheckResult, Monitor, MonitorStatus
from tests.factories import make_monitor
from tests.monitors import targets
from tests.support import wait_for

pytestmark = pytest.mark.django_db
http_target = targets.http_target


def _spec(url: str, name: str, timeout: float = 2) -> CheckSpec:
    return CheckSpec(
        monitor_id=name, kind="http", timeout=timeout, config={"url": url}, allow_private=True
    )


def test_batches_from_several_threads_share_the_loop_and_none_waits_for_another(http_target):
    """A worker on the threads pool: one task's batch hangs on a target, another task's batch
    is checked and handed back meanwhile (no barrier between batches of a process)."""
    hang = http_target.route("/hang", hang=True)
    fast = http_target.route("/fast")
    slow_outcomes: list[CheckOutcome] = []
    slow = threading.Thread(
        target=lambda: slow_outcomes.extend(engine.run_batch([_spec(hang, "hang", timeout=3)]))
    )
    slow.start()
    try:
        wait_for(lambda: http_target.hits["/hang"] == 1, 10, "the hanging check in flight")
        outcomes = engine.run_batch([_spec(fast, f"f{i}") for i in range(5)])
        assert [o.outcome for o in outcomes] == [Outcome.UP] * 5
        assert ("gone", "/hang") not in http_target.events  # the hang was still in flight
    finally:
        slow.join(timeout=15)
    assert slow_outcomes[0].error_class == "timeout"


def test_a_batch_folds_without_re_reading_its_monitors_under_a_lock(org):
    monitors = [make_monitor(org, f"m{i}", failure_threshold=1) for i in range(5)]
    loaded = list(Monitor.objects.filter(pk__in=[m.pk for m in monitors]))
    with CaptureQueriesContext(connection) as queries:
        engine.results_record(
            monitors=loaded, outcomes=[CheckOutcome(Outcome.DOWN) for _ in loaded], region="default"
        )
    statements = [q["sql"] for q in queries.captured_queries]
    if connection.vendor == "postgresql":
        relocks = [s for s in statements if 'FOR UPDATE OF "monitors_monitor"' in s]
        assert not relocks, relocks
        assert any(s.startswith('UPDATE "monitors_monitor"') for s in statements)
    assert {m.status for m in Monitor.objects.filter(pk__in=[m.pk for m in monitors])} == {
        MonitorStatus.DOWN
    }
    assert CheckResult.objects.filter(monitor__in=monitors).count() == 5


def test_a_result_folded_by_another_writer_meanwhile_is_counted_not_overwritten(org):
    """The batch read the monitor before checking; a "check now" recorded a failure in the
    meantime. The batch's failure folds on top of it: two failures, not one."""
    monitor = make_monitor(org, "raced", failure_threshold=3)
    read_by_batch = Monitor.objects.get(pk=monitor.pk)
    engine.results_record(
        monitors=[Monitor.objects.get(pk=monitor.pk)],
        outcomes=[CheckOutcome(Outcome.DOWN)],
        region="default",
    )
    engine.results_record(
        monitors=[read_by_batch], outcomes=[CheckOutcome(Outcome.DOWN)], region="default"
    )
    monitor.refresh_from_db()
    assert monitor.consecutive_failures == 2
    assert monitor.status == MonitorStatus.UNKNOWN  # below the threshold of 3


def test_a_monitor_paused_while_its_check_ran_keeps_its_status(org):
    monitor = make_monitor(org, "paused-meanwhile", failure_threshold=1)
    read_by_batch = Monitor.objects.get(pk=monitor.pk)
    Monitor.objects.filter(pk=monitor.pk).update(paused=True)
    engine.results_record(
        monitors=[read_by_batch], outcomes=[CheckOutcome(Outcome.DOWN)], region="default"
    )
    monitor.refresh_from_db()
    assert (monitor.status, monitor.consecutive_failures) == (MonitorStatus.UNKNOWN, 0)
    assert CheckResult.objects.filter(monitor=monitor).count() == 1  # the result is kept


def test_a_recorded_result_carries_its_id_and_every_field(org):
    monitor = make_monitor(org, "fields")
    outcome = CheckOutcome(
        Outcome.DOWN,
        response_time_ms=12.5,
        status_code=503,
        timings={"connect_ms": 1.0, "total_ms": 12.5},
        error_class="assertion",
        error_message="x" * 600,
        assertion_failures=[{"assertion": "status == 200", "expected": "200", "actual": "503"}],
    )
    (row,) = engine.results_record(
        monitors=[Monitor.objects.get(pk=monitor.pk)], outcomes=[outcome], region="eu"
    )
    stored = CheckResult.objects.get(pk=row.pk)
    assert (stored.outcome, stored.response_time_ms, stored.status_code) == ("down", 12.5, 503)
    assert stored.timings == {"connect_ms": 1.0, "total_ms": 12.5}
    assert stored.assertion_failures[0]["actual"] == "503"
    assert (stored.region, len(stored.error_message)) == ("eu", 500)
    assert stored.organization_id == org.pk


def test_each_recorded_result_gets_the_id_of_its_own_row(org):
    monitors = [make_monitor(org, f"order-{i}") for i in range(8)]
    loaded = list(Monitor.objects.filter(pk__in=[m.pk for m in monitors]))
    rows = engine.results_record(
        monitors=loaded,
        outcomes=[CheckOutcome(Outcome.UP, response_time_ms=float(i)) for i in range(8)],
        region="default",
    )
    stored = {r.pk: r for r in CheckResult.objects.filter(pk__in=[r.pk for r in rows])}
    assert [(stored[r.pk].monitor_id, stored[r.pk].response_time_ms) for r in rows] == [
        (m.pk, float(i)) for i, m in enumerate(loaded)
    ]


def test_checks_run_promptly_after_the_clock_comes_back_from_a_time_travel(http_target):
    """The shared loop paces starts on its monotonic clock. A test travelling in time
    (time_machine replaces the monotonic clock too) books a start slot decades ahead; back on
    the real clock, the next batch must not wait for that slot (it hung a whole suite once)."""
    from datetime import UTC, datetime

    import time_machine

    from apps.monitors.checkloop import CheckLoop

    loop = CheckLoop()
    url = http_target.route("/ok")
    try:
        with time_machine.travel(datetime(2030, 1, 1, tzinfo=UTC), tick=True):
            assert loop.run([_spec(url, "during")], allow_private=True)[0].outcome == Outcome.UP
        after = loop.submit([_spec(url, f"after{i}") for i in range(3)], allow_private=True)
        assert [o.outcome for o in after.result(timeout=10)] == [Outcome.UP] * 3
    finally:
        loop.close()
