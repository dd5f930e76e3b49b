"""gRPC checker: the standard health checking protocol (grpc.health.v1.Health/Check).

config: host, port, service ("" asks about the server as a whole), tls (False), ca_pem (None:
extra trusted CA as PEM text, with tls), server_name (TLS name and :authority; default host).

Up when the server answers SERVING; down when it answers NOT_SERVING or does not know the
service, when it does not implement the health service, or when it cannot be reached. The
channel connects to the address the SSRF guard vetted (never resolving the name again) and
ignores proxy settings from the environment.
timings: dns_ms, rpc_ms (connect, handshake and the call), total_ms.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any

from apps.monitors.checkers.base import CheckOutcome, CheckSpec, ErrorClass, Outcome
from apps.monitors.checkers.net import down, ms, resolve_host_port, timed_checker, up_or_slow

# grpc is imported when a check runs: its core starts threads that a prefork worker's parent
# must not hold when it forks.


def _target(address: str, port: int) -> str:
    return (
        f"[{address}]:{port}" if ipaddress.ip_address(address).version == 6 else f"{address}:{port}"
    )


def _channel(address: str, port: int, config: dict[str, Any], name: str) -> Any:
    import grpc

    options = [("grpc.enable_http_proxy", 0), ("grpc.default_authority", f"{name}:{port}")]
    if not config.get("tls"):
        return grpc.aio.insecure_channel(_target(address, port), options=options)
    ca_pem = config.get("ca_pem")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca_pem.encode() if ca_pem else None
    )
    options.append(("grpc.ssl_target_name_override", name))
    return grpc.aio.secure_channel(_target(address, port), credentials, options=options)


def _rpc_failure(exc: Any, service: str, timings: dict[str, float]) -> CheckOutcome:
    import grpc

    code = exc.code()
    detail = (exc.details() or "")[:200]
    if code == grpc.StatusCode.NOT_FOUND:
        return down(ErrorClass.STATUS, f"the server does not know the service {service!r}")
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return down(ErrorClass.PROTOCOL, "the server does not implement grpc.health.v1.Health")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return down(ErrorClass.TIMEOUT, "no health answer within the timeout", timings=timings)
    if code == grpc.StatusCode.UNAVAILABLE:
        tls_words = ("ssl", "tls", "certificate", "handshake")
        error_class = (
            ErrorClass.TLS if any(w in detail.lower() for w in tls_words) else ErrorClass.CONNECTION
        )
        return down(error_class, f"unavailable: {detail}", timings=timings)
    return down(ErrorClass.PROTOCOL, f"{code.name}: {detail}", timings=timings)


async def _run(spec: CheckSpec, timings: dict[str, float], started: float) -> CheckOutcome:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    service = str(spec.config.get("service") or "")
    target = await resolve_host_port(spec, timings, started)
    if isinstance(target, CheckOutcome):
        return target
    name = str(spec.config.get("server_name") or target.host)
    resolved = target.at
    left = max(0.1, spec.timeout - (resolved - started))
    address = target.addresses[0]
    async with _channel(address, target.port, spec.config, name) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            answer = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=left)
        except grpc.aio.AioRpcError as exc:
            return _rpc_failure(exc, service, timings)
    finished = time.monotonic()
    timings["rpc_ms"] = ms(finished - resolved)
    timings["total_ms"] = ms(finished - started)
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    details = {"address": address, "service": service, "status": status}
    if answer.status != health_pb2.HealthCheckResponse.SERVING:
        return down(
            ErrorClass.STATUS,
            f"health status {status}" + (f" for {service!r}" if service else ""),
            timings=timings,
            details=details,
        )
    outcome = CheckOutcome(
        outcome=Outcome.UP, response_time_ms=timings["total_ms"], timings=timings, details=details
    )
    return up_or_slow(spec, outcome)


check = timed_checker("grpc", _run)
