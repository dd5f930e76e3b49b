"""The demo target: scripted, reproducible scenarios over real HTTP(S) on 127.0.0.1, a control
endpoint, deterministic metric samples, and the demo monitors that watch it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from apps.console.demo import samples
from apps.console.demo.scenarios import Script
from apps.console.demo.server import DemoTarget
from apps.console.demo.setup import ensure_demo_target_monitors
from apps.incidents.models import Incident
from apps.monitors import engine
from apps.monitors.models import MetricSample, Monitor


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:  # noqa: S310 - 127.0.0.1 only
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _post(url: str, payload: dict) -> tuple[int, dict]:
    request = urllib.request.Request(  # noqa: S310
        url, data=json.dumps(payload).encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as r:  # noqa: S310
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def target(tmp_path) -> Iterator[DemoTarget]:
    t = DemoTarget(
        script=Script(slow_ms=900, recovering_period_s=2.0, recovering_down_s=1.0),
        cert_folder=tmp_path,
    ).start()
    yield t
    t.stop()


def test_each_scenario_answers_as_its_name_says(target):
    assert _get(f"{target.url}/s/healthy")[0] == 200
    assert _get(f"{target.url}/s/down")[0] == 503
    started = time.monotonic()
    assert _get(f"{target.url}/s/slow")[0] == 200
    assert time.monotonic() - started >= 0.9
    assert _get(f"{target.url}/s/anything-else")[0] == 200  # unknown names start healthy


def test_the_flaky_sequence_is_the_same_for_the_same_seed(tmp_path):
    def statuses(seed: int) -> list[int]:
        t = DemoTarget(script=Script(seed=seed), tls_port=None).start()
        try:
            return [_get(f"{t.url}/s/flaky")[0] for _ in range(30)]
        finally:
            t.stop()

    first, again, other = statuses(7), statuses(7), statuses(8)
    assert first == again
    assert first != other
    assert 500 in first
    assert 200 in first


def test_recovering_is_down_then_up_on_its_script(target):
    assert _get(f"{target.url}/s/recovering")[0] == 503
    time.sleep(1.1)
    assert _get(f"{target.url}/s/recovering")[0] == 200


def test_the_control_endpoint_switches_a_scenario_and_back(target):
    assert _post(f"{target.url}/control/checkout", {"mode": "down"})[0] == 200
    assert _get(f"{target.url}/s/checkout")[0] == 503
    state = json.loads(_get(f"{target.url}/control")[1])
    assert state["checkout"] == {"mode": "down", "hits": 1, "failures": 1, "restarts": 0}
    _post(f"{target.url}/control/checkout", {"mode": "auto"})
    assert _get(f"{target.url}/s/checkout")[0] == 200
    status, body = _post(f"{target.url}/control/checkout", {"mode": "sideways"})
    assert status == 400
    assert "mode must be one of" in body["error"]


def test_metric_samples_are_deterministic_and_spike_on_schedule():
    assert samples.sample(7, 3) == samples.sample(7, 3)
    assert samples.sample(7, 3) != samples.sample(8, 3)
    calm = [samples.sample(7, k)["cpu"] for k in range(samples.SPIKE_AT)]
    spike = [samples.sample(7, k)["cpu"] for k in range(samples.SPIKE_AT, samples.SPIKE_AT + 8)]
    assert max(calm) < 60
    assert min(spike) > 90


@pytest.mark.django_db(transaction=True)
def test_the_pusher_posts_samples_the_product_stores(live_server, org):
    from apps.plans.services import organization_change_plan
    from apps.tenants import services

    organization_change_plan(org=org, plan_code="pro", source="test", reason="metrics")
    key = services.api_key_create(org=org, name="demo", scopes=["write"]).secret
    pusher = samples.MetricPusher(
        base_url=live_server.url, api_key=key, seed=7, interval=60, source="demo-target"
    )
    assert pusher.push_once() in (200, 201, 202)
    assert pusher.push_once() in (200, 201, 202)
    stored = {
        (s.name, s.value)
        for s in MetricSample.objects.filter(organization=org, source="demo-target")
    }
    assert ("cpu", samples.sample(7, 0)["cpu"]) in stored
    assert ("cpu", samples.sample(7, 1)["cpu"]) in stored


@pytest.mark.django_db
def test_the_demo_monitors_see_each_scenario_and_open_an_incident_for_the_down_one(
    target, org, tmp_path
):
    from apps.plans.services import organization_change_plan

    organization_change_plan(org=org, plan_code="pro", source="test", reason="demo")
    created = ensure_demo_target_monitors(
        org=org, port=target.port, tls_port=target.tls_port, cert_folder=tmp_path
    )
    assert created == 7
    assert (
        ensure_demo_target_monitors(
            org=org, port=target.port, tls_port=target.tls_port, cert_folder=tmp_path
        )
        == 0
    )  # idempotent
    checked = [m.pk for m in Monitor.objects.for_org(org).exclude(kind="metric")]
    for _ in range(2):  # the failure threshold
        engine.run_monitors(checked)
    status = dict(Monitor.objects.for_org(org).values_list("name", "status"))
    assert status["shop (healthy)"] == "up"
    assert status["legacy api (down)"] == "down"
    assert status["reports (slow)"] == "degraded"
    assert status["shop certificate"] == "degraded"  # expires in 5 days, warning at 14
    assert Incident.objects.filter(monitor__name="legacy api (down)", status="triggered").exists()
