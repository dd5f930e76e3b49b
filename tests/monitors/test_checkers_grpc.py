"""The grpc checker against real gRPC servers on 127.0.0.1 running the standard health service
(grpcio-health-checking), plain and over TLS with a test CA (no mocks)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager

import grpc
import trustme
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from apps.monitors.checkers import grpc as grpc_checker
from apps.monitors.checkers.base import CheckSpec, ErrorClass, Outcome
from tests.monitors import targets
from tests.monitors.targets import ca_pem, run_check, wrong_host_cert

tls_ca = targets.tls_ca
refused_port = targets.refused_port
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@contextmanager
def serve(
    *,
    with_health: bool = True,
    tls: trustme.LeafCert | None = None,
    statuses: dict[str, int] | None = None,
) -> Iterator[tuple[int, health.HealthServicer]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    for service, status in (statuses or {"": SERVING}).items():
        servicer.set(service, status)
    if with_health:
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    if tls is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        key = tls.private_key_pem.bytes()
        chain = b"".join(blob.bytes() for blob in tls.cert_chain_pems)
        port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, chain)]))
    server.start()
    try:
        yield port, servicer
    finally:
        server.stop(grace=None)


def spec(port: int, *, host="127.0.0.1", allow_private=True, timeout=5.0, **config):
    return CheckSpec(
        monitor_id="m1",
        kind="grpc",
        timeout=timeout,
        config={"host": host, "port": port, **config},
        allow_private=allow_private,
    )


def test_a_serving_server_is_up_with_timings():
    with serve() as (port, _):
        result = run_check(grpc_checker.check, spec(port))
    assert result.outcome == Outcome.UP, result.error_message
    assert result.details == {"address": "127.0.0.1", "service": "", "status": "SERVING"}
    assert set(result.timings) == {"dns_ms", "rpc_ms", "total_ms"}


def test_a_named_service_that_is_not_serving_is_down_with_its_status():
    statuses = {"": SERVING, "payments.v1.Payments": NOT_SERVING}
    with serve(statuses=statuses) as (port, _):
        result = run_check(grpc_checker.check, spec(port, service="payments.v1.Payments"))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.STATUS
    assert result.error_message == "health status NOT_SERVING for 'payments.v1.Payments'"


def test_a_service_the_server_does_not_know_is_down():
    with serve() as (port, _):
        result = run_check(grpc_checker.check, spec(port, service="nope.v1.Nope"))
    assert result.outcome == Outcome.DOWN
    assert result.error_message == "the server does not know the service 'nope.v1.Nope'"


def test_a_server_without_the_health_service_is_down_as_protocol():
    with serve(with_health=False) as (port, _):
        result = run_check(grpc_checker.check, spec(port))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.PROTOCOL
    assert "grpc.health.v1.Health" in result.error_message


def test_over_tls_with_a_trusted_certificate_is_up(tls_ca):
    leaf = tls_ca.issue_cert("127.0.0.1", "localhost")
    with serve(tls=leaf) as (port, _):
        result = run_check(grpc_checker.check, spec(port, tls=True, ca_pem=ca_pem(tls_ca)))
    assert result.outcome == Outcome.UP, result.error_message


def test_over_tls_a_certificate_for_another_name_is_down(tls_ca):
    with serve(tls=wrong_host_cert(tls_ca)) as (port, _):
        result = run_check(grpc_checker.check, spec(port, tls=True, ca_pem=ca_pem(tls_ca)))
    assert result.outcome == Outcome.DOWN
    assert result.error_class in (ErrorClass.TLS, ErrorClass.CONNECTION)


def test_a_refused_port_is_down_unavailable(refused_port):
    result = run_check(grpc_checker.check, spec(refused_port, timeout=3))
    assert result.outcome == Outcome.DOWN
    assert result.error_class in (ErrorClass.CONNECTION, ErrorClass.TIMEOUT)


def test_loopback_is_blocked_before_connecting_when_private_targets_are_not_allowed():
    with serve() as (port, _):
        for host in ("127.0.0.1", "localhost"):
            result = run_check(grpc_checker.check, spec(port, host=host, allow_private=False))
            assert result.outcome == Outcome.DOWN
            assert result.error_class == ErrorClass.BLOCKED
