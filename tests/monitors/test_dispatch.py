import tempfile
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from psycopg import pq

from apps.monitors import engine, services
from apps.monitors.models import Monitor, MonitorSchedule
from apps.monitors.schedule import lane_of
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


def _monitors(org, n, *, due_at, interval=60, kind="http", prefix="m", **extra):
    rows = Monitor.objects.bulk_create(
        [
            Monitor(
                organization=org,
                name=f"{prefix}{i}",
                slug=f"{prefix}{i}",
                kind=kind,
                interval_seconds=interval,
                config={"url": "http://127.0.0.1:9/"},
                **extra,
            )
            for i in range(n)
        ]
    )
    MonitorSchedule.objects.bulk_create(
        MonitorSchedule(
            monitor=m,
            lane=lane_of(kind),
            next_check_at=due_at,
            interval_seconds=interval,
            regions=m.regions,
        )
        for m in rows
    )
    return rows


def test_only_due_active_monitors_are_claimed_and_advanced(org):
    now = timezone.now()
    due = _monitors(org, 3, due_at=now - timedelta(seconds=5))
    _monitors(org, 1, due_at=now + timedelta(seconds=30), prefix="later")
    (paused,) = _monitors(org, 1, due_at=now - timedelta(seconds=5), prefix="paused")
    services.monitor_pause(monitor=paused)
    # A heartbeat's deadline is the sweep's, not the dispatcher's.
    _monitors(org, 1, due_at=now - timedelta(seconds=5), prefix="hb", kind="heartbeat")
    claimed = engine.claim_due(now=now)
    assert {c.monitor_id for c in claimed} == {str(m.pk) for m in due}
    assert all(abs(c.lag_seconds - 5) < 0.01 for c in claimed)
    for m in due:
        m.refresh_from_db()
        # Phase kept: the previous due time plus one interval.
        assert m.next_check_at == now - timedelta(seconds=5) + timedelta(seconds=60)
    assert engine.claim_due(now=now) == []


def test_pausing_takes_a_monitor_out_of_dispatch_and_resuming_checks_it_at_once(org):
    now = timezone.now()
    (monitor,) = _monitors(org, 1, due_at=now - timedelta(seconds=5))
    services.monitor_pause(monitor=monitor)
    assert monitor.next_check_at is None
    assert engine.claim_due(now=now + timedelta(days=1)) == []
    services.monitor_resume(monitor=monitor)
    assert monitor.next_check_at is not None
    assert [c.monitor_id for c in engine.claim_due()] == [str(monitor.pk)]


def test_a_shorter_interval_moves_the_next_check_closer(org):
    now = timezone.now()
    (monitor,) = _monitors(org, 1, due_at=now + timedelta(hours=1), interval=3600)
    services.monitor_update(monitor=monitor, data={"interval_seconds": 300})
    monitor.refresh_from_db()
    assert monitor.next_check_at <= timezone.now() + timedelta(seconds=300)
    claimed = engine.claim_due(now=monitor.next_check_at)
    # The claim advances by the new interval (the schedule row follows the monitor).
    monitor.refresh_from_db()
    assert monitor.next_check_at == claimed[0].due_at + timedelta(seconds=300)


@pytest.mark.parametrize(
    ("late", "runs_now", "next_in"),
    [
        # Less than an interval late: checked now, next slot in phase.
        (timedelta(seconds=5), True, timedelta(seconds=55)),
        (timedelta(seconds=59), True, timedelta(seconds=1)),
        # A whole interval or more behind (an outage): the missed checks are skipped and the
        # monitor keeps its phase: its next slot, not "now + interval".
        (timedelta(seconds=60), False, timedelta(seconds=60)),
        (timedelta(minutes=10, seconds=15), False, timedelta(seconds=45)),
    ],
)
def test_a_monitor_behind_keeps_its_phase_and_skips_what_it_missed(org, late, runs_now, next_in):
    now = timezone.now()
    (m,) = _monitors(org, 1, due_at=now - late, interval=60)
    (claimed,) = engine.claim_due(now=now)
    assert claimed.run is runs_now
    m.refresh_from_db()
    assert m.next_check_at == now + next_in


def test_claims_are_bounded_by_the_limit(org):
    now = timezone.now()
    _monitors(org, 7, due_at=now)
    assert len(engine.claim_due(now=now, limit=5)) == 5
    assert len(engine.claim_due(now=now, limit=5)) == 2


def test_dispatch_enqueues_one_task_per_region_and_batch(org, monkeypatch):
    from apps.monitors import tasks

    sent = []
    monkeypatch.setattr(
        tasks.run_checks,
        "apply_async",
        lambda args, queue: sent.append((len(args[0]), args[1], queue)),
    )
    monkeypatch.setattr(engine, "TASK_BATCH", 2)
    now = timezone.now()
    _monitors(org, 3, due_at=now, regions=["default", "eu"])
    assert engine.dispatch(now=now) == 3
    assert sorted(sent) == sorted(
        [
            (2, "default", "checks.default"),
            (1, "default", "checks.default"),
            (2, "eu", "checks.eu"),
            (1, "eu", "checks.eu"),
        ]
    )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED is PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_never_claim_the_same_monitor():
    org = OrganizationFactory()
    now = timezone.now()
    _monitors(org, 600, due_at=now - timedelta(seconds=1))
    barrier = threading.Barrier(2)
    claims: list[list[str]] = []

    def run():
        barrier.wait()
        try:
            got = []
            while batch := engine.claim_due(now=now, limit=50):
                got.extend(c.monitor_id for c in batch)
            claims.append(got)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    first, second = claims
    assert not set(first) & set(second)
    assert len(first) + len(second) == 600
    assert first  # both really worked concurrently
    assert second


@pytest.mark.skipif(connection.vendor != "postgresql", reason="query plan of PostgreSQL")
def test_the_claim_reads_the_due_index_and_never_the_whole_table(org):
    """O(due), not O(all monitors): with statistics expecting many due rows the claim still
    reads the partial index `schedule_due` and joins back by primary key, never a scan."""
    now = timezone.now()
    _monitors(org, 3000, due_at=now + timedelta(hours=1))
    _monitors(org, 100, due_at=now - timedelta(seconds=1), prefix="due")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE monitors_monitorschedule")
        cursor.execute(engine._CLAIM_PLANNER)
        cursor.execute("EXPLAIN " + engine._CLAIM_SQL, {"now": now, "limit": 5000})
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "schedule_due" in plan
    assert "Seq Scan" not in plan
    assert "monitors_monitor " not in plan  # the wide monitor table is not touched at all


def test_a_claim_is_one_round_trip_in_one_transaction(org, django_assert_num_queries):
    now = timezone.now()
    _monitors(org, 20, due_at=now - timedelta(seconds=1))
    # PostgreSQL: savepoint, the claim (its SET LOCALs in the same query string), release.
    # SQLite: savepoint, select, one update for the batch, release.
    with django_assert_num_queries(3 if connection.vendor == "postgresql" else 4):
        assert len(engine.claim_due(now=now)) == 20


@pytest.mark.skipif(connection.vendor != "postgresql", reason="implicit transaction blocks")
@pytest.mark.django_db(transaction=True)
def test_the_dispatchers_claim_is_its_own_transaction_in_one_round_trip(django_assert_num_queries):
    """Outside any transaction (as the dispatcher runs) the claim is one query string: no
    BEGIN, no COMMIT; its advance is committed and its planner settings end with it."""
    org = OrganizationFactory()
    now = timezone.now()
    rows = _monitors(org, 20, due_at=now - timedelta(seconds=1))
    # What goes over the wire, from libpq's own trace of the protocol messages sent.
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    with tempfile.TemporaryFile() as trace, django_assert_num_queries(1):
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            claimed = engine.claim_due(now=now)
        finally:
            pgconn.untrace()
        trace.seek(0)
        wire = trace.read().decode()
    sent = [line for line in wire.splitlines() if line.startswith("F\t")]
    assert len(sent) == 1, sent  # no BEGIN, no COMMIT: one query string, one round trip
    assert "SET LOCAL" in sent[0]
    assert "FOR UPDATE SKIP LOCKED" in wire
    assert sorted(c.monitor_id for c in claimed) == sorted(str(m.pk) for m in rows)
    assert {c.due_at for c in claimed} == {now - timedelta(seconds=1)}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('enable_hashjoin'), pg_current_xact_id_if_assigned()"
        )
        # Nothing leaked, and no transaction left open.
        assert cursor.fetchone() == ("on", None)
    # The advance is there with no transaction open: committed.
    advanced = MonitorSchedule.objects.filter(next_check_at=now + timedelta(seconds=59)).count()
    assert advanced == 20


def test_after_an_outage_overdue_checks_keep_their_spread_instead_of_one_herd(org):
    """300 monitors every 10 s, spread over the interval; the dispatcher stops for 2 minutes.
    Before the fix they all came back in one tick and stayed there; now each tick after the
    return runs about the share it ran before, and every monitor keeps its phase."""
    t0 = timezone.now().replace(microsecond=0)
    rows = _monitors(org, 300, due_at=t0, interval=10)
    for i, row in enumerate(rows):
        MonitorSchedule.objects.filter(monitor=row).update(
            next_check_at=t0 + timedelta(seconds=10 * i / 300)
        )
    phase_before = {
        str(s.monitor_id): (s.next_check_at - t0).total_seconds() % 10
        for s in MonitorSchedule.objects.all()
    }

    def ticks(start, count):
        runs = []
        for n in range(count):
            claimed = engine.claim_due(now=start + timedelta(seconds=2 * n))
            runs.append(sum(c.run for c in claimed))
        return runs

    before = ticks(t0 + timedelta(seconds=2), 10)  # 20 s of normal dispatch
    # Dispatch stopped for 2 minutes; then it ticks again.
    after = ticks(t0 + timedelta(seconds=142), 15)
    print(f"checks run per 2 s tick, before: {before}; after a 2-minute stop: {after}")
    assert max(before) <= 61
    # The first tick back runs nothing that fell a whole interval behind; then the same
    # spread as before (each tick about a fifth of the monitors), not all 300 at once.
    assert after[0] == 0
    assert max(after) <= 61
    assert sum(after[1:6]) == 300  # every monitor checked within one interval of the return
    phase_after = {
        str(s.monitor_id): (s.next_check_at - t0).total_seconds() % 10
        for s in MonitorSchedule.objects.all()
    }
    assert phase_after == pytest.approx(phase_before, abs=1e-3)
