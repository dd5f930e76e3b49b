"""Metric series (downsampled in SQL: avg, min, max, p95 per step) and the list of sources."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.monitors.models import MetricSample

pytestmark = pytest.mark.django_db
SERIES = "/api/v1/metrics/series"
SOURCES = "/api/v1/metrics/sources"
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _samples(org, source, name, values, *, every=timedelta(seconds=10), start=T0):
    MetricSample.objects.bulk_create(
        MetricSample(organization=org, source=source, name=name, value=v, ts=start + i * every)
        for i, v in enumerate(values)
    )


def _series(client, **params):
    response = client.get(SERIES, params)
    assert response.status_code == 200, response.content
    return response.json()


def test_points_per_step_match_numpy(key_client, org):
    rng = np.random.default_rng(7)
    values = rng.gamma(2.0, 50.0, size=360).round(3)  # an hour every 10 s
    _samples(org, "api", "latency_ms", values.tolist())
    body = _series(
        key_client(org),
        source="api",
        name="latency_ms",
        since=T0.isoformat(),
        until=(T0 + timedelta(hours=1)).isoformat(),
        step=600,
    )
    assert body["step"] == 600
    assert len(body["points"]) == 6
    for i, point in enumerate(body["points"]):
        chunk = np.sort(values[i * 60 : (i + 1) * 60])
        assert point["t"] == (T0 + timedelta(minutes=10 * i)).isoformat().replace("+00:00", "Z")
        assert point["count"] == 60
        assert point["avg"] == pytest.approx(chunk.mean())
        assert (point["min"], point["max"]) == (chunk[0], chunk[-1])
        # nearest rank: the value at rank ceil(0.95 * 60) = 57
        assert point["p95"] == chunk[56]
        assert point["p95"] == np.percentile(chunk, 95, method="inverted_cdf")


def test_empty_steps_are_left_out_and_the_range_is_half_open(key_client, org):
    _samples(org, "api", "cpu", [1.0, 2.0], every=timedelta(hours=1))
    body = _series(
        key_client(org),
        source="api",
        name="cpu",
        since=T0.isoformat(),
        until=(T0 + timedelta(hours=1)).isoformat(),
        step=60,
    )
    assert [p["avg"] for p in body["points"]] == [1.0]


def test_without_since_until_or_step_it_picks_a_day_in_about_300_points(key_client, org):
    body = _series(key_client(org), source="api", name="cpu")
    assert body["step"] == 288
    assert body["points"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"name": "cpu"},
        {"source": "api"},
        {"source": "a b", "name": "cpu"},
        {"source": "api", "name": "CPU"},
        {"source": "api", "name": "cpu", "step": "5"},
        {"source": "api", "name": "cpu", "step": "x"},
        {
            "source": "api",
            "name": "cpu",
            "since": "2026-03-02T00:00:00Z",
            "until": "2026-03-01T00:00:00Z",
        },
        {"source": "api", "name": "cpu", "since": "2025-01-01T00:00:00Z", "step": "60"},
    ],
)
def test_bad_parameters_are_400_naming_the_field(key_client, org, params):
    response = key_client(org).get(SERIES, params)
    assert response.status_code == 400
    assert response.json()["fields"]


def test_another_organizations_samples_are_never_in_a_series(key_client, org, other_org):
    _samples(org, "api", "cpu", [10.0])
    _samples(other_org, "api", "cpu", [90.0])
    params = {"source": "api", "name": "cpu", "since": T0.isoformat(), "step": 60}
    params["until"] = (T0 + timedelta(minutes=1)).isoformat()
    assert [p["max"] for p in _series(key_client(org), **params)["points"]] == [10.0]
    assert [p["max"] for p in _series(key_client(other_org), **params)["points"]] == [90.0]


def test_sources_list_each_source_with_its_metric_names(key_client, org, other_org):
    _samples(org, "api", "cpu", [1.0, 2.0])
    _samples(org, "api", "memory", [1.0])
    _samples(org, "worker", "queue.depth", [3.0], start=T0 + timedelta(hours=2))
    _samples(other_org, "secret-host", "cpu", [1.0])
    body = key_client(org).get(SOURCES).json()
    assert [(s["source"], [m["name"] for m in s["metrics"]]) for s in body] == [
        ("api", ["cpu", "memory"]),
        ("worker", ["queue.depth"]),
    ]
    assert body[0]["metrics"][0]["last_seen"] == "2026-03-01T00:00:10Z"
    assert body[1]["last_seen"] == "2026-03-01T02:00:00Z"
    recent = key_client(org).get(SOURCES, {"since": "2026-03-01T01:00:00Z"}).json()
    assert [s["source"] for s in recent] == ["worker"]
    assert [s["source"] for s in key_client(other_org).get(SOURCES).json()] == ["secret-host"]


def test_reads_cost_a_fixed_number_of_queries(key_client, org):
    client = key_client(org)
    client.get(SOURCES)

    def count(url, params=None):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(url, params).status_code == 200
        return len(queries)

    params = {"source": "s0", "name": "m0", "since": T0.isoformat(), "step": 60}
    params["until"] = (T0 + timedelta(hours=1)).isoformat()
    before = (count(SOURCES), count(SERIES, params))
    for i in range(20):
        _samples(org, f"s{i}", f"m{i}", [1.0] * 30)
    assert (count(SOURCES), count(SERIES, params)) == before
