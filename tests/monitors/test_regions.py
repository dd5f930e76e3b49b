"""Regions with quorum: each region's queue checks, the round is judged once all reported."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.monitors import engine
from apps.monitors.checkers.base import CheckOutcome, Outcome
from apps.monitors.models import Monitor, MonitorStatus
from apps.monitors.schedule import schedule_set
from apps.monitors.state import round_outcome
from tests.factories import OrganizationFactory
from tests.support import wait_for

pytestmark = pytest.mark.django_db


def _monitor(org, quorum, regions=("default", "eu", "us")):
    return Monitor.objects.create(
        organization=org,
        name="global",
        slug=f"global-{quorum}",
        kind="http",
        config={"url": "http://127.0.0.1:9/"},
        regions=list(regions),
        quorum=quorum,
        failure_threshold=1,
    )


def _report(monitor, region, outcome, round_at):
    engine.results_record(
        monitors=[monitor],
        outcomes=[CheckOutcome(outcome)],
        region=region,
        rounds={str(monitor.pk): round_at.isoformat()},
    )
    monitor.refresh_from_db()
    return monitor.status


@pytest.mark.parametrize(
    ("outcomes", "quorum", "verdict"),
    [
        (["down", "up", "up"], 1, "down"),
        (["down", "up", "up"], 2, "degraded"),
        (["down", "down", "up"], 2, "down"),
        (["up", "up", "up"], 2, "up"),
        (["inconclusive", "inconclusive", "inconclusive"], 1, "inconclusive"),
        (["inconclusive", "up", "up"], 2, "up"),
    ],
)
def test_a_round_fails_only_with_quorum(outcomes, quorum, verdict):
    assert round_outcome(outcomes, quorum) == verdict


def test_nothing_is_decided_until_every_region_reported(org):
    monitor = _monitor(org, quorum=2)
    round_at = timezone.now()
    assert _report(monitor, "default", Outcome.DOWN, round_at) == MonitorStatus.UNKNOWN
    assert _report(monitor, "eu", Outcome.DOWN, round_at) == MonitorStatus.UNKNOWN
    assert _report(monitor, "us", Outcome.UP, round_at) == MonitorStatus.DOWN


def test_one_failing_region_is_not_an_outage_with_quorum_two(org):
    monitor = _monitor(org, quorum=2)
    round_at = timezone.now()
    for region, outcome in (("default", Outcome.DOWN), ("eu", Outcome.UP), ("us", Outcome.UP)):
        status = _report(monitor, region, outcome, round_at)
    assert status == MonitorStatus.DEGRADED


def test_a_redelivered_region_batch_does_not_fold_the_round_twice(org):
    monitor = _monitor(org, quorum=1, regions=("default", "eu"))
    round_at = timezone.now()
    _report(monitor, "default", Outcome.DOWN, round_at)
    _report(monitor, "eu", Outcome.UP, round_at)
    monitor.refresh_from_db()
    assert monitor.consecutive_failures == 1
    _report(monitor, "eu", Outcome.UP, round_at)  # the same batch again
    monitor.refresh_from_db()
    assert monitor.consecutive_failures == 1


def test_dispatch_sends_the_round_to_every_region(org, monkeypatch):
    from apps.monitors import tasks

    sent = []
    monkeypatch.setattr(
        tasks.run_checks, "apply_async", lambda args, queue: sent.append((args, queue))
    )
    monitor = _monitor(org, quorum=2)
    due = timezone.now() - timedelta(seconds=1)
    schedule_set(monitor, due)
    engine.dispatch()
    assert sorted(q for _, q in sent) == ["checks.default", "checks.eu", "checks.us"]
    assert {args[2][str(monitor.pk)] for args, _ in sent} == {due.isoformat()}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_regions_finishing_together_fold_the_round_exactly_once():
    org = OrganizationFactory()
    monitor = _monitor(org, quorum=1, regions=("default", "eu", "us"))
    round_at = timezone.now()
    barrier = threading.Barrier(3)

    def report(region):
        barrier.wait()
        try:
            engine.results_record(
                monitors=[Monitor.objects.get(pk=monitor.pk)],
                outcomes=[CheckOutcome(Outcome.DOWN)],
                region=region,
                rounds={str(monitor.pk): round_at.isoformat()},
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=report, args=(r,)) for r in ("default", "eu", "us")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    monitor.refresh_from_db()
    assert (monitor.status, monitor.consecutive_failures) == (MonitorStatus.DOWN, 1)


@pytest.mark.django_db(transaction=True)
def test_one_real_worker_per_region_checks_and_the_round_is_judged_once(settings):
    """Beat's dispatch -> the broker -> a worker per region queue -> one verdict per round.

    The region workers run one after the other: two Celery workers in threads of one process
    share the app's broker connections, and under load one was seen blocked on a Redis read
    past its shutdown. Results arriving at once are the threaded test above; here the first
    region's result alone must not judge the round, and the second's must."""
    from celery.contrib.testing.worker import start_worker

    from healthorch.celery import app
    from tests.monitors.targets import serve_http

    settings.HEALTHORCH_REGIONS = ["default", "eu"]
    org = OrganizationFactory()

    def region_worker(queue: str):
        return start_worker(
            app,
            pool="solo",
            perform_ping_check=False,
            queues=[queue],
            hostname=f"{queue}@test",
            shutdown_timeout=30,
        )

    with serve_http() as target:
        url = target.route("/down", status=503)
        monitor = Monitor.objects.create(
            organization=org,
            name="global",
            slug="global",
            kind="http",
            config={"url": url},
            regions=["default", "eu"],
            quorum=2,
            failure_threshold=1,
            timeout_seconds=2,
        )
        schedule_set(monitor, timezone.now() - timedelta(seconds=1))
        assert engine.dispatch() == 1

        with region_worker("checks.eu"):
            wait_for(lambda: monitor.results.filter(region="eu").exists(), 30, "the eu result")
        monitor.refresh_from_db()
        assert (monitor.status, monitor.consecutive_failures) == (MonitorStatus.UNKNOWN, 0)

        with region_worker("checks.default"):
            wait_for(
                lambda: Monitor.objects.get(pk=monitor.pk).status == MonitorStatus.DOWN,
                30,
                "the round's verdict",
            )
        assert target.hits["/down"] == 2  # once from each region
    monitor.refresh_from_db()
    assert (monitor.status, monitor.consecutive_failures) == (MonitorStatus.DOWN, 1)
    assert sorted(monitor.results.values_list("region", flat=True)) == ["default", "eu"]
