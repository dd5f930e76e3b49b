"""TLS certificate checker.

config: host, port (443), expiry_warning_days (14), ca_pem (None: extra trusted CA as PEM
text), server_name (SNI and the name the certificate must match; default host).

A verified handshake decides the outcome; when it fails, a second, unverified handshake reads
the certificate anyway so the expiry and names are still recorded.
timings: dns_ms, connect_ms (TCP only), tls_ms (verified handshake), total_ms.
"""

from __future__ import annotations

import ssl
import time
from typing import Any

from apps.monitors.checkers.base import (
    CheckOutcome,
    CheckSpec,
    ErrorClass,
    Outcome,
)
from apps.monitors.checkers.net import (
    CertInfo,
    abort,
    addresses_or_down,
    connect_error_message,
    down,
    expiry_judged,
    ms,
    open_first,
    parse_cert,
    peer_cert_der,
    timed_checker,
    tls_context,
    with_cert,
)

DEFAULT_PORT = 443
DEFAULT_WARNING_DAYS = 14


class _HandshakeFailed(Exception):
    def __init__(self, message: str, *, invalid_cert: bool) -> None:
        super().__init__(message)
        self.invalid_cert = invalid_cert  # a certificate arrived but did not verify


async def _handshake(
    addresses: list[str], port: int, context: ssl.SSLContext, server_name: str
) -> tuple[bytes | None, float]:
    """Connect and handshake; return the peer certificate and when TCP was connected.

    Raises OSError when no TCP connection could be made, _HandshakeFailed after that.
    """
    _, writer = await open_first(addresses, port)
    connected = time.monotonic()
    try:
        await writer.start_tls(context, server_hostname=server_name)
        return peer_cert_der(writer.transport), connected
    except ssl.SSLCertVerificationError as exc:
        reason = exc.verify_message or exc.reason or str(exc)
        raise _HandshakeFailed(f"certificate not valid: {reason}", invalid_cert=True) from exc
    except ssl.SSLError as exc:
        raise _HandshakeFailed(
            f"TLS handshake failed: {exc.reason or exc}", invalid_cert=False
        ) from exc
    except (OSError, EOFError) as exc:
        # The TCP connection worked, so the peer dropping it here means it does not speak TLS.
        raise _HandshakeFailed(
            f"TLS handshake failed: the server closed the connection ({type(exc).__name__})",
            invalid_cert=False,
        ) from exc
    finally:
        abort(writer)


async def _read_invalid_cert(addresses: list[str], port: int, server_name: str) -> CertInfo | None:
    try:
        der, _ = await _handshake(addresses, port, tls_context(verify=False), server_name)
    except (OSError, _HandshakeFailed):
        return None
    return parse_cert(der) if der else None


async def _run(spec: CheckSpec, timings: dict[str, float], started: float) -> CheckOutcome:
    config: dict[str, Any] = spec.config
    host = str(config.get("host") or "")
    server_name = str(config.get("server_name") or host)
    try:
        port = int(config.get("port") or DEFAULT_PORT)
        warning_days = float(config.get("expiry_warning_days", DEFAULT_WARNING_DAYS))
    except (TypeError, ValueError):
        return down(ErrorClass.PROTOCOL, "port and expiry_warning_days must be numbers")
    try:
        context = tls_context(config.get("ca_pem"))
    except ssl.SSLError as exc:
        return down(ErrorClass.TLS, f"cannot use ca_pem: {exc.reason or exc}")
    addresses = await addresses_or_down(host, port, allow_private=spec.allow_private)
    if isinstance(addresses, CheckOutcome):
        return addresses
    resolved = time.monotonic()
    timings["dns_ms"] = ms(resolved - started)

    try:
        der, connected = await _handshake(addresses, port, context, server_name)
    except OSError as exc:
        return down(ErrorClass.CONNECTION, connect_error_message(exc, host, port), timings=timings)
    except _HandshakeFailed as exc:
        timings["total_ms"] = ms(time.monotonic() - started)
        outcome = down(
            ErrorClass.TLS, str(exc), timings=timings, details={"server_name": server_name}
        )
        if exc.invalid_cert:
            with_cert(outcome, await _read_invalid_cert(addresses, port, server_name))
        return outcome
    finished = time.monotonic()
    timings["connect_ms"] = ms(connected - resolved)
    timings["tls_ms"] = ms(finished - connected)
    timings["total_ms"] = ms(finished - started)

    outcome = CheckOutcome(
        outcome=Outcome.UP,
        response_time_ms=timings["total_ms"],
        timings=timings,
        details={"server_name": server_name},
    )
    if not der:
        return down(ErrorClass.TLS, "the server sent no certificate", timings=timings)
    return expiry_judged(spec, outcome, parse_cert(der), warning_days)


check = timed_checker("tls", _run)
