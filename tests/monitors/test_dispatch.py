import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.monitors import engine
from apps.monitors.models import Monitor
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


def _monitors(org, n, *, due_at, interval=60, **extra):
    rows = [
        Monitor(
            organization=org,
            name=f"m{i}",
            slug=f"m{i}",
            kind="http",
            interval_seconds=interval,
            config={"url": "http://127.0.0.1:9/"},
            next_check_at=due_at,
            **extra,
        )
        for i in range(n)
    ]
    return Monitor.objects.bulk_create(rows)


def test_only_due_active_monitors_are_claimed_and_advanced(org):
    now = timezone.now()
    due = _monitors(org, 3, due_at=now - timedelta(seconds=5))
    Monitor.objects.bulk_create(
        [
            Monitor(
                organization=org,
                name="later",
                slug="later",
                kind="http",
                interval_seconds=60,
                config={},
                next_check_at=now + timedelta(seconds=30),
            ),
            Monitor(
                organization=org,
                name="paused",
                slug="paused",
                kind="http",
                interval_seconds=60,
                config={},
                next_check_at=now - timedelta(seconds=5),
                paused=True,
            ),
            Monitor(
                organization=org,
                name="hb",
                slug="hb",
                kind="heartbeat",
                interval_seconds=60,
                config={},
                next_check_at=now - timedelta(seconds=5),
            ),
        ]
    )
    claimed = engine.claim_due(now=now)
    assert {c.monitor_id for c in claimed} == {str(m.pk) for m in due}
    assert all(abs(c.lag_seconds - 5) < 0.01 for c in claimed)
    for m in due:
        m.refresh_from_db()
        # Phase kept: the previous due time plus one interval.
        assert m.next_check_at == now - timedelta(seconds=5) + timedelta(seconds=60)
    assert engine.claim_due(now=now) == []


def test_a_monitor_a_whole_interval_behind_restarts_from_now(org):
    now = timezone.now()
    (m,) = _monitors(org, 1, due_at=now - timedelta(minutes=10), interval=60)
    engine.claim_due(now=now)
    m.refresh_from_db()
    assert m.next_check_at == now + timedelta(seconds=60)


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
def test_the_claim_uses_the_partial_index(org):
    """O(due), not O(all monitors): the claim reads the due index, never the table."""
    now = timezone.now()
    _monitors(org, 50, due_at=now + timedelta(hours=1))
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + engine._CLAIM_SQL, {"now": now, "limit": 5000})
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "monitor_due" in plan
