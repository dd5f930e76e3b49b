import random
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.monitors import rollups, services
from apps.monitors.models import CheckResult, Granularity, HeartbeatPing, ResultRollup
from apps.plans.services import organization_change_plan

pytestmark = pytest.mark.django_db
HOUR = datetime(2026, 6, 1, 10, tzinfo=UTC)


@pytest.fixture
def monitor(org):
    return services.monitor_create(
        org=org,
        data={
            "name": "api",
            "kind": "http",
            "config": {"url": "http://127.0.0.1:9/"},
        },
    )


def _results(monitor, start, outcomes_and_ms):
    CheckResult.objects.bulk_create(
        [
            CheckResult(
                monitor=monitor,
                organization_id=monitor.organization_id,
                checked_at=start + timedelta(seconds=i),
                outcome=o,
                response_time_ms=ms,
            )
            for i, (o, ms) in enumerate(outcomes_and_ms)
        ]
    )


def test_an_hour_rolls_up_counts_and_percentiles_within_two_percent(monitor):
    rng = random.Random(7)
    latencies = [rng.uniform(20, 400) for _ in range(2000)]
    _results(
        monitor,
        HOUR,
        [("up", ms) for ms in latencies]
        + [("down", None)] * 10
        + [("degraded", 900.0)] * 5
        + [("inconclusive", None)] * 3,
    )
    assert rollups.rollup_hour(HOUR + timedelta(minutes=30)) == 1
    r = ResultRollup.objects.get(monitor=monitor, granularity=Granularity.HOUR)
    assert (r.total, r.up, r.down, r.degraded, r.inconclusive) == (2018, 2000, 10, 5, 3)
    exact = sorted([*latencies, *[900.0] * 5])
    for q, got in ((0.5, r.p50_ms), (0.95, r.p95_ms), (0.99, r.p99_ms)):
        truth = exact[int(q * (len(exact) - 1))]
        assert abs(got - truth) / truth < 0.021, (q, got, truth)
    assert r.latency_min_ms == min(exact)
    assert r.latency_max_ms == 900.0


def test_rolling_up_twice_gives_the_same_row(monitor):
    _results(monitor, HOUR, [("up", 50.0)] * 3)
    rollups.rollup_hour(HOUR)
    _results(monitor, HOUR + timedelta(minutes=10), [("down", None)])  # a late result
    rollups.rollup_hour(HOUR)
    r = ResultRollup.objects.get(monitor=monitor)
    assert (r.total, r.up, r.down) == (4, 3, 1)


def test_a_day_merges_its_hours_without_rescanning(monitor):
    for h in range(3):
        _results(monitor, HOUR + timedelta(hours=h), [("up", 10.0 * (h + 1))] * 10)
        rollups.rollup_hour(HOUR + timedelta(hours=h))
    CheckResult.objects.all().delete()  # the day must come from the hours alone
    rollups.rollup_day(HOUR)
    day = ResultRollup.objects.get(granularity=Granularity.DAY)
    assert (day.total, day.latency_count, day.latency_min_ms, day.latency_max_ms) == (
        30,
        30,
        10.0,
        30.0,
    )
    assert abs(day.p50_ms - 20) / 20 < 0.021


def test_uptime_comes_from_rollups_plus_the_current_hour(client_for, member, monitor):
    now = HOUR + timedelta(minutes=20)
    for h in range(1, 49):  # two days of hours: 1 failure in 10 for the older day
        start = HOUR - timedelta(hours=h)
        outcomes = [("up", 30.0)] * 9 + [("down", None)] if h > 24 else [("up", 30.0)] * 10
        _results(monitor, start, outcomes)
        rollups.rollup_hour(start)
    _results(monitor, HOUR, [("up", 30.0)] * 4 + [("down", None)])
    with time_machine.travel(now, tick=False):
        body = client_for(member).get(f"/api/v1/monitors/{monitor.pk}/uptime/").json()
    assert body["24h"]["checks"] == 24 * 10 + 5
    assert body["24h"]["uptime_pct"] == round(100 * (240 + 4) / 245, 4)
    assert body["7d"]["checks"] == 48 * 10 + 5
    assert body["7d"]["uptime_pct"] == round(100 * (240 + 216 + 4) / 485, 4)
    assert abs(body["7d"]["p95_ms"] - 30) / 30 < 0.021


def test_uptime_without_data_is_null(client_for, member, monitor):
    body = client_for(member).get(f"/api/v1/monitors/{monitor.pk}/uptime/").json()
    assert body["30d"] == {
        "uptime_pct": None,
        "checks": 0,
        "p50_ms": None,
        "p95_ms": None,
        "p99_ms": None,
    }


def test_pruning_follows_each_plans_retention(org, other_org, monitor):
    organization_change_plan(org=other_org, plan_code="pro", source="test")
    theirs = services.monitor_create(
        org=other_org,
        data={
            "name": "x",
            "kind": "http",
            "config": {"url": "http://127.0.0.1:9/"},
        },
    )
    now = datetime(2026, 6, 30, tzinfo=UTC)
    for m in (monitor, theirs):
        _results(m, now - timedelta(days=10), [("up", 5.0)])
        _results(m, now - timedelta(days=2), [("up", 5.0)])
        HeartbeatPing.objects.create(
            monitor=m,
            organization_id=m.organization_id,
            kind="success",
            received_at=now - timedelta(days=10),
        )
    deleted = rollups.prune_results(now=now)
    assert deleted == 2  # free keeps 7 days: one old result and one old ping of `monitor`
    assert CheckResult.objects.filter(monitor=monitor).count() == 1
    assert CheckResult.objects.filter(monitor=theirs).count() == 2
