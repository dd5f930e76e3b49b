"""The smtp, icmp, grpc and kubernetes kinds through the product's doors: created by the API
with their defaults, refused at save when they point inside (the SSRF guard), the Kubernetes
token kept as an encrypted secret, and checked by the engine with results recorded."""

from __future__ import annotations

import pytest
from grpc_health.v1 import health_pb2

from apps.monitors import engine, services
from apps.monitors.models import CheckResult, Monitor
from tests.monitors import targets
from tests.monitors.targets import ca_pem
from tests.monitors.test_checkers_grpc import serve as serve_grpc

pytestmark = pytest.mark.django_db
URL = "/api/v1/monitors/"
tls_ca = targets.tls_ca
https_target = targets.https_target

KUBE = {"server": "https://127.0.0.1:6443", "target": "deployment", "name": "web"}


@pytest.mark.parametrize(
    ("kind", "config", "stored"),
    [
        ("smtp", {"host": "127.0.0.1"}, {"port": 25, "tls": "starttls"}),
        ("smtp", {"host": "127.0.0.1", "port": 465}, {"tls": "implicit"}),
        ("icmp", {"host": "127.0.0.1"}, {"count": 3, "interval_ms": 200}),
        ("grpc", {"host": "127.0.0.1", "port": 50051}, {"service": "", "tls": False}),
        ("kubernetes", KUBE, {"namespace": "default", "target": "deployment"}),
    ],
)
def test_each_new_kind_is_created_with_its_defaults(client_for, member, kind, config, stored):
    response = client_for(member).post(
        URL, {"name": f"a {kind}", "kind": kind, "config": config}, format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["config"].items() >= stored.items()


@pytest.mark.parametrize(
    ("kind", "config", "field"),
    [
        ("smtp", {"host": "localhost", "port": 25}, "host"),
        ("icmp", {"host": "169.254.169.254"}, "host"),
        ("grpc", {"host": "127.0.0.1", "port": 50051}, "host"),
        ("kubernetes", {"server": "https://[::1]:6443"}, "server"),
    ],
)
def test_internal_targets_are_refused_at_save(client_for, member, settings, kind, config, field):
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = False
    response = client_for(member).post(
        URL, {"name": "x", "kind": kind, "config": config}, format="json"
    )
    assert response.status_code == 400
    assert "Target refused" in str(response.json()["fields"]["config"][field])
    assert not Monitor.objects.exists()


@pytest.mark.parametrize(
    ("kind", "config", "field"),
    [
        ("kubernetes", {"server": "http://127.0.0.1:6443"}, "server"),
        ("kubernetes", {**KUBE, "name": None}, "name"),
        ("kubernetes", {"server": "https://127.0.0.1", "target": "deployment"}, "name"),
        ("kubernetes", {**KUBE, "namespace": "Not_A_Namespace"}, "namespace"),
        ("icmp", {"host": "127.0.0.1", "count": 0}, "count"),
        ("smtp", {"host": "127.0.0.1", "tls": "maybe"}, "tls"),
        ("grpc", {"host": "127.0.0.1"}, "port"),
    ],
)
def test_bad_config_is_a_400_naming_the_field(client_for, member, kind, config, field):
    response = client_for(member).post(
        URL, {"name": "x", "kind": kind, "config": config}, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()["fields"]["config"], response.json()


def test_the_kubernetes_token_is_encrypted_never_returned_and_kept_across_edits(client_for, member):
    client = client_for(member)
    body = {"name": "cluster", "kind": "kubernetes", "config": {**KUBE, "token": "tok-s3cret"}}
    created = client.post(URL, body, format="json")
    assert created.status_code == 201, created.json()
    assert "tok-s3cret" not in str(created.json())
    assert created.json()["has_secret"] is True
    monitor = Monitor.objects.get(pk=created.json()["id"])
    assert "tok-s3cret" not in monitor.secret
    assert "token" not in monitor.config

    edited = client.patch(f"{URL}{monitor.pk}/", {"config": {**KUBE, "name": "api"}}, format="json")
    assert edited.status_code == 200, edited.json()
    monitor.refresh_from_db()
    assert monitor.config["name"] == "api"
    assert services.secret_of(monitor) == "tok-s3cret"
    assert engine.spec_for(monitor).config["token"] == "tok-s3cret"


def test_the_engine_checks_a_grpc_monitor_and_records_the_result(org):
    statuses = {"": health_pb2.HealthCheckResponse.SERVING}
    with serve_grpc(statuses=statuses) as (port, servicer):
        monitor = services.monitor_create(
            org=org,
            data={"name": "rpc", "kind": "grpc", "config": {"host": "127.0.0.1", "port": port}},
        )
        (first,) = engine.run_monitors([monitor.pk])
        servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        (second,) = engine.run_monitors([monitor.pk])
    assert (first.outcome, second.outcome) == ("up", "down")
    assert second.error_message == "health status NOT_SERVING"
    assert CheckResult.objects.filter(monitor=monitor).count() == 2


def test_the_engine_checks_a_kubernetes_monitor_with_its_stored_token(org, https_target, tls_ca):
    https_target.route("/readyz", body="readyz check passed")
    config = {"server": https_target.url("/").rstrip("/"), "ca_pem": ca_pem(tls_ca)}
    monitor = services.monitor_create(
        org=org,
        data={"name": "k8s", "kind": "kubernetes", "config": {**config, "token": "tok-1"}},
    )
    (result,) = engine.run_monitors([monitor.pk])
    assert result.outcome == "up", result.error_message
    assert https_target.requests[-1].headers["authorization"] == "Bearer tok-1"
