"""What every checker takes and returns. Framework-free: no Django models in the hot path.

A worker turns Monitor rows into CheckSpecs, runs a batch of them concurrently, and turns the
CheckOutcomes into CheckResult rows. Checkers never raise for a failing target: every problem
becomes an outcome with an `error_class` and `error_message`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Outcome:
    UP = "up"
    DEGRADED = "degraded"  # soft failure: slow, certificate inside the warning window
    DOWN = "down"
    INCONCLUSIVE = "inconclusive"  # the checker itself could not tell (its uplink failed)


class ErrorClass:
    NONE = ""
    TIMEOUT = "timeout"
    DNS = "dns"
    CONNECTION = "connection"  # refused, reset, unreachable
    TLS = "tls"  # handshake failed, certificate invalid or expired
    STATUS = "status"  # HTTP status not expected
    ASSERTION = "assertion"
    BLOCKED = "blocked"  # SSRF guard refused the resolved address
    PROTOCOL = "protocol"  # the peer answered, but not as the protocol requires
    AUTH = "auth"  # database/redis refused the credentials
    MISMATCH = "mismatch"  # DNS answer differs from the expected values
    SLOW = "slow"  # answered, but slower than expected_response_time_ms (degraded)
    CERT_EXPIRING = "cert_expiring"  # valid, but inside the warning window (degraded)
    PACKET_LOSS = "packet_loss"  # some ICMP echo requests went unanswered (degraded)
    REPLICAS = "replicas"  # a Kubernetes workload has fewer available replicas than desired


@dataclass(frozen=True)
class CheckSpec:
    monitor_id: str
    kind: str  # http, tcp, tls, dns, postgres, redis, smtp, icmp, grpc, kubernetes
    timeout: float  # seconds, for the whole check
    config: dict[str, Any]  # kind-specific settings, see each checker's docstring
    allow_private: bool = False  # HEALTHORCH_ALLOW_PRIVATE_TARGETS
    expected_response_time_ms: float | None = None  # slower than this: degraded


@dataclass
class CheckOutcome:
    outcome: str
    response_time_ms: float | None = None
    status_code: int | None = None
    # Phase timings in ms where the protocol has them: dns, connect, tls, ttfb, total.
    timings: dict[str, float] = field(default_factory=dict)
    error_class: str = ErrorClass.NONE
    error_message: str = ""
    cert_expires_at: datetime | None = None
    # Each failed assertion: {"assertion": text, "expected": str, "actual": str}.
    assertion_failures: list[dict[str, str]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    # When the check began (wall clock, epoch seconds), stamped by the check loop: what a
    # check's lag behind its due time is measured from. Not stored with the result.
    started_at: float | None = None


@dataclass
class ResponseContext:
    """What HTTP assertions are evaluated against."""

    status: int
    response_time_ms: float
    headers: dict[str, str]  # keys lower-cased
    body: str  # decoded, at most the first 64 KiB
    cert_expires_in_seconds: float | None = None


@dataclass
class RunContext:
    """Shared per batch: one HTTP session (connection limits, DNS guard) for all http checks."""

    http: Any = None  # aiohttp.ClientSession, created by the runner


Checker = Any  # async (CheckSpec, RunContext) -> CheckOutcome
REGISTRY: dict[str, Checker] = {}


def register(kind: str):
    """Class-free plugin registry: `@register("tcp") async def check(spec, ctx): ...`."""

    def wrap(fn: Checker) -> Checker:
        REGISTRY[kind] = fn
        return fn

    return wrap
