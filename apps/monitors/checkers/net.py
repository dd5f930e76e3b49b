"""Helpers shared by the checkers: outcomes and timing, guarded resolution, connecting, TLS
contexts and certificate parsing."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from apps.core.ssrf import BlockedTarget, ResolutionFailed, check_literal, resolve_target
from apps.monitors.checkers.base import (
    Checker,
    CheckOutcome,
    CheckSpec,
    ErrorClass,
    Outcome,
    RunContext,
    register,
)

MAX_SANS = 20


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def ms_since(started: float) -> float:
    """Milliseconds since a `time.perf_counter()` reading."""
    return round((time.perf_counter() - started) * 1000, 2)


def finish(result: CheckOutcome, spec: CheckSpec, started: float) -> CheckOutcome:
    """Stamp the total time; a passing check slower than expected becomes degraded."""
    total = ms_since(started)
    result.timings["total_ms"] = total
    result.response_time_ms = total
    return up_or_slow(spec, result) if result.outcome == Outcome.UP else result


def down(error_class: str, message: str, **fields: Any) -> CheckOutcome:
    return CheckOutcome(
        outcome=Outcome.DOWN, error_class=error_class, error_message=message, **fields
    )


def timed_out(spec: CheckSpec, timings: dict[str, float]) -> CheckOutcome:
    return down(
        ErrorClass.TIMEOUT,
        f"no answer within the {spec.timeout:g}s timeout",
        timings=dict(timings),
    )


async def within(
    spec: CheckSpec, work: Awaitable[CheckOutcome], timeout_message: str
) -> CheckOutcome:
    """`work`'s outcome, or down with `timeout_message` when the monitor's timeout runs out
    first."""
    try:
        async with asyncio.timeout(spec.timeout):
            return await work
    except TimeoutError:
        return down(ErrorClass.TIMEOUT, timeout_message)


def timed_checker(
    kind: str, run: Callable[[CheckSpec, dict[str, float], float], Awaitable[CheckOutcome]]
) -> Checker:
    """Register the `kind` checker that awaits `run(spec, timings, started)` within the
    monitor's timeout; a timeout is down with the timings measured so far."""

    @register(kind)
    async def check(spec: CheckSpec, ctx: RunContext) -> CheckOutcome:
        timings: dict[str, float] = {}
        try:
            async with asyncio.timeout(spec.timeout):
                return await run(spec, timings, time.monotonic())
        except TimeoutError:
            return timed_out(spec, timings)

    return check


def deadline_checker(
    kind: str,
    run: Callable[[CheckSpec, float], Awaitable[CheckOutcome]],
    *,
    timeout_message: str = "no answer within {timeout:g}s",
    scrub: Callable[[CheckSpec, str], str] | None = None,
) -> Checker:
    """Register the `kind` checker that awaits `run(spec, started)` (a `time.perf_counter()`
    reading) within the monitor's timeout, down with `timeout_message` when it runs out, and
    stamps the total time. `scrub(spec, message)` takes a secret of the config (a password)
    out of the message."""

    @register(kind)
    async def check(spec: CheckSpec, ctx: RunContext) -> CheckOutcome:
        started = time.perf_counter()
        result = await within(
            spec, run(spec, started), timeout_message.format(timeout=spec.timeout)
        )
        if scrub is not None:
            result.error_message = scrub(spec, result.error_message)
        return finish(result, spec, started)

    return check


def judged(outcome: CheckOutcome, state: str, error_class: str, message: str) -> CheckOutcome:
    """`outcome`, its measurements kept, turned `state` (degraded, down) for `message`."""
    outcome.outcome = state
    outcome.error_class = error_class
    outcome.error_message = message
    return outcome


def up_or_slow(spec: CheckSpec, outcome: CheckOutcome) -> CheckOutcome:
    """A check that passed is still degraded when slower than the monitor expects."""
    limit = spec.expected_response_time_ms
    took = outcome.response_time_ms
    if limit is not None and took is not None and took > limit:
        message = f"answered in {took:.0f} ms, expected under {limit:g} ms"
        return judged(outcome, Outcome.DEGRADED, ErrorClass.SLOW, message)
    outcome.outcome = Outcome.UP
    return outcome


async def guarded_addresses(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Addresses to connect to, refused by the SSRF guard when blocked.

    Raises BlockedTarget or ResolutionFailed. Resolving here, at check time, and connecting to
    exactly these addresses is what defeats a name that rebinds between save and check.
    """
    check_literal(host, allow_private=allow_private)
    return await resolve_target(host, port, allow_private=allow_private)


async def addresses_or_down(
    host: str, port: int, *, allow_private: bool
) -> list[str] | CheckOutcome:
    """`guarded_addresses`, with a refusal or a failed lookup turned into the check's outcome
    (DOWN/blocked or DOWN/dns), so each checker handles both the same way."""
    try:
        return await guarded_addresses(host, port, allow_private=allow_private)
    except BlockedTarget as exc:
        return down(ErrorClass.BLOCKED, str(exc))
    except ResolutionFailed as exc:
        return down(ErrorClass.DNS, str(exc))


@dataclass(frozen=True)
class Resolved:
    """A checked host and port, with the addresses the SSRF guard vetted for it."""

    host: str
    port: int
    addresses: list[str]
    at: float  # time.monotonic() when resolution finished


async def resolve_host_port(
    spec: CheckSpec, timings: dict[str, float], started: float
) -> Resolved | CheckOutcome:
    """`config.host` and `config.port` resolved through the guard, `dns_ms` recorded; a port
    that is not a number, a refusal or a failed lookup is the check's outcome instead."""
    host = str(spec.config.get("host") or "")
    try:
        port = int(spec.config["port"])
    except (KeyError, TypeError, ValueError):
        return down(ErrorClass.PROTOCOL, "config needs a numeric port")
    addresses = await addresses_or_down(host, port, allow_private=spec.allow_private)
    if isinstance(addresses, CheckOutcome):
        return addresses
    resolved = time.monotonic()
    timings["dns_ms"] = ms(resolved - started)
    return Resolved(host, port, addresses, resolved)


async def open_first(
    addresses: list[str], port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to the first address that accepts; raise the last error if none does."""
    last: OSError | None = None
    for address in addresses:
        try:
            return await asyncio.open_connection(address, port)
        except OSError as exc:
            last = exc
    raise last or OSError("no address to connect to")


def abort(writer: asyncio.StreamWriter | None) -> None:
    # A monitor has nothing to flush; aborting avoids waiting on a peer that will not close.
    if writer is not None:
        writer.transport.abort()


def connect_error_message(exc: OSError, host: str, port: int) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {host}:{port}"
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"cannot connect to {host}:{port}: {reason}"


@lru_cache(maxsize=64)
def _verifying_context(ca_pem: str | None) -> ssl.SSLContext:
    # Loading the system CA bundle costs milliseconds; monitors share a handful of ca_pem values.
    context = ssl.create_default_context()
    if ca_pem:
        context.load_verify_locations(cadata=ca_pem)
    return context


@lru_cache(maxsize=1)
def _unverified_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def tls_context(ca_pem: str | None = None, *, verify: bool = True) -> ssl.SSLContext:
    """System CAs plus `ca_pem`; raises ssl.SSLError when `ca_pem` is not a certificate."""
    return _verifying_context(ca_pem or None) if verify else _unverified_context()


@dataclass
class CertInfo:
    not_after: datetime
    subject_cn: str | None
    issuer_cn: str | None
    sans: list[str]

    def seconds_left(self, now: datetime | None = None) -> float:
        return (self.not_after - (now or datetime.now(UTC))).total_seconds()

    def details(self) -> dict[str, Any]:
        return {
            "subject_cn": self.subject_cn,
            "issuer_cn": self.issuer_cn,
            "sans": self.sans,
            "not_after": self.not_after.isoformat(),
            "days_left": round(self.seconds_left() / 86400, 1),
        }


def _common_name(name: x509.Name) -> str | None:
    attributes = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attributes[0].value) if attributes else None


def parse_cert(der: bytes) -> CertInfo:
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = [*san.get_values_for_type(x509.DNSName)]
        sans += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        sans = []
    return CertInfo(
        not_after=cert.not_valid_after_utc,
        subject_cn=_common_name(cert.subject),
        issuer_cn=_common_name(cert.issuer),
        sans=sans[:MAX_SANS],
    )


def with_cert(outcome: CheckOutcome, cert: CertInfo | None) -> CheckOutcome:
    """Record the certificate's expiry and names on the outcome."""
    if cert is not None:
        outcome.cert_expires_at = cert.not_after
        outcome.details.update(cert.details())
    return outcome


def expiry_judged(
    spec: CheckSpec, outcome: CheckOutcome, cert: CertInfo, warning_days: float
) -> CheckOutcome:
    """A passing outcome with `cert` recorded: degraded inside the warning window, else up
    (or degraded when slow)."""
    with_cert(outcome, cert)
    left = cert.seconds_left()
    if left < timedelta(days=warning_days).total_seconds():
        message = (
            f"certificate expires in {left / 86400:.1f} days ({cert.not_after:%Y-%m-%d %H:%M} "
            f"UTC), inside the {warning_days:g}-day warning window"
        )
        return judged(outcome, Outcome.DEGRADED, ErrorClass.CERT_EXPIRING, message)
    return up_or_slow(spec, outcome)


def peer_cert_der(transport: asyncio.BaseTransport | None) -> bytes | None:
    """The peer's leaf certificate, readable even when it was not verified."""
    if transport is None:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    return ssl_object.getpeercert(binary_form=True)
