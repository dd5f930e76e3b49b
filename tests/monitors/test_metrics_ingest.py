from datetime import timedelta

import pytest
from django.utils import timezone

from apps.monitors.models import MetricSample, Monitor, MonitorStatus
from tests.factories import make_monitor

pytestmark = pytest.mark.django_db
URL = "/api/v1/metrics"


def test_one_sample_is_accepted_with_202(key_client, org):
    client = key_client(org)
    body = {"source": "api-1", "metrics": {"cpu": 71.5, "memory": 63.0, "error_rate": 0.02}}
    response = client.post(URL, body, format="json")
    assert response.status_code == 202
    assert response.json() == {"accepted": 3}
    assert set(MetricSample.objects.values_list("name", flat=True)) == {
        "cpu",
        "memory",
        "error_rate",
    }
    assert client.get("/api/v1/usage").json()["usage"]["metric_samples"]["used"] == 3


def test_a_batch_of_samples(key_client, org):
    samples = [{"source": f"host{i}", "metrics": {"cpu": i}} for i in range(1000)]
    response = key_client(org).post(URL, {"samples": samples}, format="json")
    assert response.status_code == 202
    assert MetricSample.objects.count() == 1000


@pytest.mark.parametrize(
    ("sample", "field"),
    [
        ({"source": "api 1", "metrics": {"cpu": 1}}, "samples[1].source"),
        ({"source": "api", "metrics": {}}, "samples[1].metrics"),
        ({"source": "api", "metrics": {"CPU": 1}}, "samples[1].metrics.CPU"),
        ({"source": "api", "metrics": {"cpu": "high"}}, "samples[1].metrics.cpu"),
        ({"source": "api", "metrics": {"cpu": True}}, "samples[1].metrics.cpu"),
        ({"source": "api", "metrics": {"cpu": 1}, "ts": "yesterday"}, "samples[1].ts"),
        ({"source": "api", "metrics": {"cpu": 1}, "host": "x"}, "samples[1].host"),
    ],
)
def test_a_bad_sample_rejects_the_whole_request_naming_index_and_field(
    key_client, org, sample, field
):
    good = {"source": "api", "metrics": {"cpu": 1}}
    response = key_client(org).post(URL, {"samples": [good, sample]}, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not MetricSample.objects.exists()


def test_non_finite_numbers_are_refused(key_client, org):
    response = key_client(org).post(
        URL, '{"source": "a", "metrics": {"cpu": NaN}}', content_type="application/json"
    )
    assert response.status_code == 400
    assert not MetricSample.objects.exists()


def test_timestamps_may_not_be_far_in_the_future(key_client, org):
    ts = (timezone.now() + timedelta(minutes=10)).isoformat()
    response = key_client(org).post(
        URL, {"source": "a", "metrics": {"cpu": 1}, "ts": ts}, format="json"
    )
    assert response.status_code == 400
    assert "ts" in response.json()["fields"]


def test_more_than_1000_samples_is_refused(key_client, org):
    samples = [{"source": "a", "metrics": {"cpu": 1}}] * 1001
    assert key_client(org).post(URL, {"samples": samples}, format="json").status_code == 400


def test_a_read_only_key_cannot_ingest(key_client, org):
    response = key_client(org, scopes=["read"]).post(
        URL, {"source": "a", "metrics": {"x": 1}}, format="json"
    )
    assert response.status_code == 403


def test_samples_land_in_the_callers_organization_only(key_client, org, other_org):
    key_client(org).post(URL, {"source": "a", "metrics": {"x": 1}}, format="json")
    assert MetricSample.objects.get().organization == org
    assert not MetricSample.objects.filter(organization=other_org).exists()


def test_a_metric_monitor_fails_once_the_breach_lasts_for_seconds(key_client, org):
    cpu = {"source": "api-1", "metric": "cpu", "operator": ">", "threshold": 90, "for_seconds": 60}
    monitor = make_monitor(org, "cpu hot", kind="metric", config=cpu)
    client = key_client(org)
    t0 = timezone.now() - timedelta(minutes=3)

    def send(offset, value):
        ts = (t0 + timedelta(seconds=offset)).isoformat()
        client.post(URL, {"source": "api-1", "metrics": {"cpu": value}, "ts": ts}, format="json")
        monitor.refresh_from_db()
        return monitor.status

    assert send(0, 50) == MonitorStatus.UP
    assert send(10, 95) == MonitorStatus.UP  # breaching, not for 60 s yet
    assert send(40, 97) == MonitorStatus.UP
    assert send(71, 99) == MonitorStatus.DOWN  # 61 s of breach
    assert send(80, 40) == MonitorStatus.UP
    other = Monitor.objects.get(pk=monitor.pk)
    assert other.consecutive_failures == 0
