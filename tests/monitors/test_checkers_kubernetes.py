"""The kubernetes checker against a local fake API server over TLS (a test CA): the real paths
(`/readyz?verbose`, `/apis/apps/v1/namespaces/{ns}/deployments/{name}`, statefulsets), the
real object shapes, the bearer token, and what each answer means for the monitor."""

from __future__ import annotations

import json

import pytest

from apps.monitors.checkers import kubernetes
from apps.monitors.checkers.base import CheckSpec, ErrorClass, Outcome
from tests.monitors import targets
from tests.monitors.targets import ca_pem, run_check

tls_ca = targets.tls_ca
https_target = targets.https_target
TOKEN = "kube-token-123"  # a test credential for the fake API server


def workload(kind: str, desired: int, available: int | None, ready: int = 0) -> str:
    status = {"replicas": desired, "readyReplicas": ready, "updatedReplicas": desired}
    if available is not None:
        status["availableReplicas"] = available
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": kind,
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": desired},
            "status": status,
        }
    )


def spec(fake, tls_ca, *, allow_private=True, **config):
    return CheckSpec(
        monitor_id="m1",
        kind="kubernetes",
        timeout=5.0,
        config={"server": fake.url("/").rstrip("/"), "ca_pem": ca_pem(tls_ca), **config},
        allow_private=allow_private,
    )


def test_a_ready_api_server_is_up_and_was_asked_with_the_token(https_target, tls_ca):
    https_target.route("/readyz", body="[+]ping ok\n[+]etcd ok\nreadyz check passed")
    result = run_check(kubernetes.check, spec(https_target, tls_ca, token=TOKEN))
    assert result.outcome == Outcome.UP, result.error_message
    seen = https_target.requests[-1]
    assert (seen.method, seen.path) == ("GET", "/readyz")
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"
    assert set(result.timings) == {"ttfb_ms", "total_ms"}


def test_an_api_server_that_is_not_ready_is_down_naming_the_failing_checks(https_target, tls_ca):
    body = "[+]ping ok\n[-]etcd failed: reason withheld\n[+]log ok\nreadyz check failed"
    https_target.route("/readyz", status=500, body=body)
    result = run_check(kubernetes.check, spec(https_target, tls_ca, token=TOKEN))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.STATUS
    assert result.error_message == "API server not ready (500): etcd failed: reason withheld"


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_is_down_as_auth(https_target, tls_ca, status):
    https_target.route("/readyz", status=status, body=f'{{"kind":"Status","code":{status}}}')
    result = run_check(kubernetes.check, spec(https_target, tls_ca, token="wrong"))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.AUTH
    assert result.error_message == f"the API server refused the token ({status})"


@pytest.mark.parametrize(
    ("kind", "target", "desired", "available", "outcome", "message"),
    [
        ("Deployment", "deployment", 3, 3, Outcome.UP, ""),
        ("Deployment", "deployment", 3, 1, Outcome.DEGRADED, "1 of 3 replicas of deployment"),
        ("Deployment", "deployment", 3, None, Outcome.DOWN, "0 of 3 replicas of deployment"),
        ("Deployment", "deployment", 0, None, Outcome.UP, ""),  # scaled to zero on purpose
        ("StatefulSet", "statefulset", 2, 2, Outcome.UP, ""),
        ("StatefulSet", "statefulset", 2, 0, Outcome.DOWN, "0 of 2 replicas of statefulset"),
    ],
)
def test_workload_replicas_decide_the_outcome(
    https_target, tls_ca, kind, target, desired, available, outcome, message
):
    path = f"/apis/apps/v1/namespaces/shop/{target}s/web"
    https_target.route(path, body=workload(kind, desired, available))
    config = {"target": target, "namespace": "shop", "name": "web", "token": TOKEN}
    result = run_check(kubernetes.check, spec(https_target, tls_ca, **config))
    assert result.outcome == outcome, result.error_message
    assert result.error_message.startswith(message)
    assert https_target.requests[-1].path == path
    assert result.details["desired"] == desired
    if outcome != Outcome.UP:
        assert result.error_class == ErrorClass.REPLICAS
        assert result.error_message.endswith(f"{target} shop/web available")


def test_a_missing_workload_is_down_saying_which(https_target, tls_ca):
    config = {"target": "deployment", "namespace": "shop", "name": "gone", "token": TOKEN}
    result = run_check(kubernetes.check, spec(https_target, tls_ca, **config))  # 404 route
    assert result.outcome == Outcome.DOWN
    assert result.error_message == "deployment shop/gone not found"


def test_an_api_server_with_a_certificate_from_another_ca_is_down_as_tls(https_target):
    import trustme

    other = trustme.CA()
    https_target.route("/readyz", body="ok")
    result = run_check(kubernetes.check, spec(https_target, other, token=TOKEN))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.TLS
    assert https_target.hits["/readyz"] == 0


def test_a_redirect_is_not_followed(https_target, tls_ca):
    https_target.route("/readyz", redirect_to=https_target.url("/elsewhere"))
    result = run_check(kubernetes.check, spec(https_target, tls_ca, token=TOKEN))
    assert result.outcome == Outcome.DOWN
    assert https_target.hits["/elsewhere"] == 0


def test_loopback_is_blocked_before_connecting_when_private_targets_are_not_allowed(
    https_target, tls_ca
):
    https_target.route("/readyz", body="ok")
    result = run_check(kubernetes.check, spec(https_target, tls_ca, allow_private=False))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.BLOCKED
    assert https_target.hits["/readyz"] == 0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"server": "http://127.0.0.1:6443"}, "server must be the API server's https:// URL"),
        ({"target": "pod"}, "config: target must be one of readyz, deployment, statefulset"),
        ({"target": "deployment"}, "config: a deployment target needs a name"),
    ],
)
def test_unusable_config_is_down_without_a_request(https_target, tls_ca, config, message):
    result = run_check(kubernetes.check, spec(https_target, tls_ca, **config))
    assert result.outcome == Outcome.DOWN
    assert result.error_message == message
    assert https_target.requests == []
