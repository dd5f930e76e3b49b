"""SMTP checker: does the mail server greet, speak ESMTP and (usually) offer TLS?

config: host, port (25), tls ("starttls": the server must offer STARTTLS and the handshake must
verify; "implicit": TLS from the first byte, as on port 465; "none": plain SMTP only),
expiry_warning_days (14), ca_pem (None: extra trusted CA as PEM text), server_name (SNI and the
name the certificate must match; default host).

The conversation is greeting, EHLO, STARTTLS where asked, EHLO again over TLS, QUIT: no mail is
ever sent and no credentials are used. A certificate inside the warning window is degraded, as
for TLS monitors.
timings: dns_ms, connect_ms, banner_ms (connect until the 220 greeting), tls_ms, total_ms.
details: banner (the greeting's first line), extensions (what EHLO offered), tls.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from typing import Any

from apps.monitors.checkers.base import CheckOutcome, CheckSpec, ErrorClass, Outcome
from apps.monitors.checkers.net import (
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
    up_or_slow,
)

DEFAULT_PORT = 25
DEFAULT_WARNING_DAYS = 14
TLS_MODES = ("starttls", "implicit", "none")
EHLO_NAME = "healthorch.check"
MAX_REPLY_LINES = 50
MAX_LINE = 1000  # RFC 5321 allows 512 octets a reply line; be generous, never unbounded
MAX_EXTENSIONS = 30


class _Refused(Exception):
    """The server answered, but not as SMTP requires; the message says what it sent."""


async def _reply(reader: asyncio.StreamReader) -> tuple[int, list[str]]:
    """One (possibly multi-line) reply: its code and its text lines."""
    lines: list[str] = []
    while len(lines) < MAX_REPLY_LINES:
        raw = await reader.readline()
        if not raw:
            raise _Refused("the server closed the connection")
        line = raw[:MAX_LINE].decode("utf-8", "replace").rstrip("\r\n")
        if len(line) < 3 or not line[:3].isdigit() or line[3:4] not in ("", " ", "-"):
            raise _Refused(f"not an SMTP reply: {line[:80]!r}")
        lines.append(line[4:])
        if line[3:4] != "-":
            return int(line[:3]), lines
    raise _Refused(f"a reply of more than {MAX_REPLY_LINES} lines")


async def _command(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: str, expected: int
) -> list[str]:
    writer.write(f"{line}\r\n".encode("ascii"))
    code, text = await _reply(reader)
    if code != expected:
        raise _Refused(f"{line.split()[0]} answered {code} {' '.join(text)[:200]}".rstrip())
    return text


def _extensions(ehlo_lines: list[str]) -> list[str]:
    # The first line is the server's name; each further line is one extension keyword.
    return [line.split(" ", 1)[0].upper() for line in ehlo_lines[1:]][:MAX_EXTENSIONS]


@dataclass(frozen=True)
class _Plan:
    port: int
    mode: str
    server_name: str
    warning_days: float
    context: ssl.SSLContext | None


def _plan(config: dict[str, Any], host: str) -> _Plan:
    """The conversation a monitor's config asks for; raises ValueError, TypeError or
    ssl.SSLError (a ca_pem that is not a certificate)."""
    port = int(config.get("port") or DEFAULT_PORT)
    mode = str(config.get("tls") or ("implicit" if port == 465 else "starttls"))
    if mode not in TLS_MODES:
        raise ValueError(f"tls must be one of {', '.join(TLS_MODES)}")
    return _Plan(
        port=port,
        mode=mode,
        server_name=str(config.get("server_name") or host),
        warning_days=float(config.get("expiry_warning_days", DEFAULT_WARNING_DAYS)),
        context=tls_context(config.get("ca_pem")) if mode != "none" else None,
    )


async def _run(spec: CheckSpec, timings: dict[str, float], started: float) -> CheckOutcome:
    host = str(spec.config.get("host") or "")
    try:
        plan = _plan(spec.config, host)
    except (TypeError, ValueError) as exc:
        return down(ErrorClass.PROTOCOL, f"config: {exc}")
    except ssl.SSLError as exc:
        return down(ErrorClass.TLS, f"cannot use ca_pem: {exc.reason or exc}")
    addresses = await addresses_or_down(host, plan.port, allow_private=spec.allow_private)
    if isinstance(addresses, CheckOutcome):
        return addresses
    resolved = time.monotonic()
    timings["dns_ms"] = ms(resolved - started)
    try:
        reader, writer = await open_first(addresses, plan.port)
    except OSError as exc:
        message = connect_error_message(exc, host, plan.port)
        return down(ErrorClass.CONNECTION, message, timings=timings)
    connected = time.monotonic()
    timings["connect_ms"] = ms(connected - resolved)
    details: dict[str, Any] = {"tls": plan.mode, "server_name": plan.server_name}
    try:
        return await _converse(spec, plan, reader, writer, timings, details, started)
    except _Refused as exc:
        return down(ErrorClass.PROTOCOL, str(exc), timings=timings, details=details)
    except ssl.SSLCertVerificationError as exc:
        reason = exc.verify_message or exc.reason or str(exc)
        return down(
            ErrorClass.TLS, f"certificate not valid: {reason}", timings=timings, details=details
        )
    except (ssl.SSLError, ConnectionError, EOFError) as exc:
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        return down(
            ErrorClass.TLS, f"TLS handshake failed: {reason}", timings=timings, details=details
        )
    finally:
        abort(writer)


async def _converse(
    spec: CheckSpec,
    plan: _Plan,
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    timings: dict[str, float],
    details: dict[str, Any],
    started: float,
) -> CheckOutcome:
    connected = time.monotonic()
    if plan.mode == "implicit":
        await writer.start_tls(plan.context, server_hostname=plan.server_name)
        timings["tls_ms"] = ms(time.monotonic() - connected)
    code, greeting = await _reply(reader)
    timings["banner_ms"] = ms(time.monotonic() - connected)
    details["banner"] = greeting[0][:200] if greeting else ""
    if code != 220:
        raise _Refused(f"greeting was {code} {details['banner']}".rstrip())
    ehlo = await _command(reader, writer, f"EHLO {EHLO_NAME}", 250)
    details["extensions"] = _extensions(ehlo)
    if plan.mode == "starttls":
        if "STARTTLS" not in details["extensions"]:
            raise _Refused("the server does not offer STARTTLS")
        await _command(reader, writer, "STARTTLS", 220)
        handshake = time.monotonic()
        await writer.start_tls(plan.context, server_hostname=plan.server_name)
        timings["tls_ms"] = ms(time.monotonic() - handshake)
        # After STARTTLS the session starts over: the server may offer other extensions.
        details["extensions"] = _extensions(
            await _command(reader, writer, f"EHLO {EHLO_NAME}", 250)
        )
    der = peer_cert_der(writer.transport) if plan.mode != "none" else None
    writer.write(b"QUIT\r\n")
    timings["total_ms"] = ms(time.monotonic() - started)
    outcome = CheckOutcome(
        outcome=Outcome.UP,
        response_time_ms=timings["total_ms"],
        timings=timings,
        details=details,
    )
    if plan.mode == "none":
        return up_or_slow(spec, outcome)
    if not der:
        raise _Refused("the server sent no certificate")
    return expiry_judged(spec, outcome, parse_cert(der), plan.warning_days)


check = timed_checker("smtp", _run)
