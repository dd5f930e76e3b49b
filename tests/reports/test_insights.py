"""Insights: trends from rollups and ingested samples, a recommendation, a forecast."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.monitors.models import MetricSample
from apps.reports import insights
from tests.reports.support import hour_rollups, make_monitor

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)


def _samples(org, source, name, values_by_hour):
    MetricSample.objects.bulk_create(
        [
            MetricSample(organization=org, source=source, name=name, value=v, ts=at)
            for at, v in values_by_hour
        ]
    )


def _hours(days):
    start = NOW - timedelta(days=days)
    return [start + timedelta(hours=h) for h in range(days * 24)]


def test_a_least_squares_fit_recovers_a_known_line():
    origin = datetime(2026, 1, 1, tzinfo=UTC)
    points = [(origin + timedelta(days=d), 3 + 2 * d) for d in range(10)]
    f = insights.fit(points, origin=origin)
    assert f["slope_per_day"] == pytest.approx(2)
    assert f["intercept"] == pytest.approx(3)
    assert f["r2"] == 1.0
    assert f["slope_ci95"][0] == pytest.approx(2)
    assert f["slope_ci95"][1] == pytest.approx(2)


def test_rising_cpu_means_scale_up_with_the_day_it_crosses_80(client_for, member, org):
    monitor = make_monitor(org, "worker", interval=300)
    # cpu climbs 1 %/day from 50 % over 20 days, with a little alternating noise.
    hours = _hours(20)
    start = hours[0]
    _samples(
        org,
        monitor.slug,
        "cpu",
        [
            (at, 50 + (at - start).total_seconds() / 86400 + (0.5 if i % 2 else -0.5))
            for i, at in enumerate(hours)
        ],
    )
    with time_machine.travel(NOW, tick=False):
        body = client_for(member).get(f"/api/v1/insights/{monitor.pk}").json()
    cpu = next(s for s in body["trends"] if s["metric"] == "cpu")
    assert cpu["enough_data"] is True
    assert cpu["trend"] == "rising"
    assert cpu["slope_per_day"] == pytest.approx(1, abs=0.01)
    assert cpu["r2"] > 0.95
    # At ~70 % now and +1 %/day, 80 % is ~10 days away: inside the 14-day horizon.
    assert cpu["forecast"]["in_days"] == pytest.approx(10, abs=0.2)
    assert body["recommendation"] == "scale_up"
    assert "cpu is rising" in body["reason"]


def test_low_flat_cpu_and_memory_mean_scale_down(org):
    monitor = make_monitor(org, "idle", interval=300)
    hours = _hours(10)
    _samples(org, monitor.slug, "cpu", [(at, 12 + (i % 3)) for i, at in enumerate(hours)])
    _samples(org, monitor.slug, "memory", [(at, 20 + (i % 2)) for i, at in enumerate(hours)])
    hour_rollups(
        monitor,
        {at: {"up": 12, "latency_count": 12, "latency_sum_ms": 12 * 80.0} for at in hours},
    )
    result = insights.monitor_insights(monitor=monitor, now=NOW)
    response = next(s for s in result["trends"] if s["metric"] == "response_time")
    assert response["enough_data"] is True
    assert response["trend"] == "flat"
    assert response["current"] == pytest.approx(80)
    assert result["recommendation"] == "scale_down"


def test_too_little_data_is_said_plainly(client_for, member, org):
    monitor = make_monitor(org, "new", interval=300)
    _samples(org, monitor.slug, "cpu", [(NOW - timedelta(hours=h), 50) for h in range(5)])
    with time_machine.travel(NOW, tick=False):
        body = client_for(member).get(f"/api/v1/insights/{monitor.pk}").json()
    assert body["enough_data"] is False
    assert body["recommendation"] == "maintain"
    assert body["reason"].startswith("Too little data")
    cpu = next(s for s in body["trends"] if s["metric"] == "cpu")
    assert cpu["reason"].startswith("Too little data to judge: 5 hourly points")
