"""HTTP(S) checker.

config: url, method ("GET"), headers ({}), body (None), follow_redirects (True),
verify_tls (True), ca_pem (None: extra trusted CA as PEM text), expected_status
([[200, 399]]: inclusive ranges; a bare int means that status only), assertions ([]).

timings: dns_ms, connect_ms (TCP connect *and* TLS handshake: aiohttp reports them as one
phase), ttfb_ms (start until the final response's headers, redirects included), total_ms.
"""

from __future__ import annotations

import asyncio
import codecs
import socket
import ssl
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from apps.core.outbound import Guard
from apps.core.ssrf import BlockedTarget, ResolutionFailed
from apps.monitors.checkers.base import (
    CheckOutcome,
    CheckSpec,
    ErrorClass,
    Outcome,
    ResponseContext,
    RunContext,
    register,
)
from apps.monitors.checkers.net import (
    down,
    ms,
    parse_cert,
    peer_cert_der,
    timed_out,
    tls_context,
    up_or_slow,
)

BODY_LIMIT = 64 * 1024
MAX_HEADERS = 50
MAX_REDIRECTS = 10
DEFAULT_EXPECTED_STATUS = [[200, 399]]
USER_AGENT = "healthorch-checker/1.0"
# The check's own asyncio.timeout bounds everything; a session-wide aiohttp timeout would only
# race it with a less precise error.
_NO_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=None, sock_read=None, sock_connect=None)
_PHASES = ("dns", "queue", "connect")


@dataclass
class _CheckState:
    """Per-check facts gathered by the resolver, connector and trace hooks."""

    allow_private: bool
    started: float = field(default_factory=time.monotonic)
    # Seconds per traced phase; "queue" is the wait for a slot under the connection limit.
    spent: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_PHASES, 0.0))
    phase_started: dict[str, float] = field(default_factory=dict)
    cert_der: bytes | None = None
    remote: str | None = None

    @property
    def queued(self) -> float:
        return self.spent["queue"]

    def timings(self) -> dict[str, float]:
        # aiohttp resolves inside its connection phase; count the lookup under dns only.
        dns = self.spent["dns"]
        return {"dns_ms": ms(dns), "connect_ms": ms(max(self.spent["connect"] - dns, 0.0))}

    def since_start(self) -> float:
        """Seconds the target took so far: the wait for a pool slot is ours, not its."""
        return time.monotonic() - self.started - self.queued


# The resolver and connector only see a host name, not the request. The check sets this in
# its own task, and aiohttp resolves and connects in that task (use_dns_cache=False means no
# shared lookup task), so they can apply the check's own SSRF policy and report back to it.
_current: ContextVar[_CheckState | None] = ContextVar("healthorch_http_check", default=None)


class GuardedResolver(AbstractResolver):
    """Resolves through the outbound guard (`apps.core.outbound.Guard`), so aiohttp connects to
    exactly the vetted addresses: the check is pinned like every other outbound request.

    A session made with allow_private=False refuses blocked addresses for every check; one made
    with allow_private=True still refuses them for a check whose spec does not allow them.
    """

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        state = _current.get()
        allow = self.allow_private and (state is None or state.allow_private)
        addresses = await Guard(allow_private=allow).resolve_async(host, port)
        results: list[ResolveResult] = []
        for address in addresses:
            found = socket.AF_INET6 if ":" in address else socket.AF_INET
            if family in (socket.AF_UNSPEC, found):
                results.append(
                    {
                        "hostname": host,
                        "host": address,
                        "port": port,
                        "family": found,
                        "proto": 0,
                        "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                    }
                )
        if not results:
            raise ResolutionFailed(f"{host} has no address of the requested family")
        return results

    async def close(self) -> None:
        return None


class _CheckConnector(aiohttp.TCPConnector):
    async def connect(self, req, traces, timeout):  # type: ignore[no-untyped-def]
        connection = await super().connect(req, traces, timeout)
        state = _current.get()
        if state is not None:
            # Read now: once a small body has arrived aiohttp releases (and, with force_close,
            # closes) the connection before the caller sees the response.
            transport = connection.transport
            state.cert_der = peer_cert_der(transport)
            peer = transport.get_extra_info("peername") if transport else None
            state.remote = str(peer[0]) if peer else None
        return connection


def _state(trace_ctx: Any) -> _CheckState | None:
    state = getattr(trace_ctx, "trace_request_ctx", None)
    return state if isinstance(state, _CheckState) else None


def _phase_hooks(phase: str):  # type: ignore[no-untyped-def]
    async def start(_session: Any, trace_ctx: Any, _params: Any) -> None:
        if state := _state(trace_ctx):
            state.phase_started[phase] = time.monotonic()

    async def end(_session: Any, trace_ctx: Any, _params: Any) -> None:
        if (state := _state(trace_ctx)) and phase in state.phase_started:
            state.spent[phase] += time.monotonic() - state.phase_started.pop(phase)

    return start, end


def _trace_config() -> aiohttp.TraceConfig:
    config = aiohttp.TraceConfig()
    signals = {
        "dns": (config.on_dns_resolvehost_start, config.on_dns_resolvehost_end),
        "queue": (config.on_connection_queued_start, config.on_connection_queued_end),
        "connect": (config.on_connection_create_start, config.on_connection_create_end),
    }
    for phase, (on_start, on_end) in signals.items():
        start, end = _phase_hooks(phase)
        on_start.append(start)
        on_end.append(end)
    return config


def make_session(*, allow_private: bool, limit: int) -> aiohttp.ClientSession:
    """The batch runner's shared session. Call from inside a running event loop."""
    connector = _CheckConnector(
        force_close=True,  # a fresh connection per check keeps connect timings honest
        limit=limit,
        # aiohttp's cache would let a check reuse another check's (or an earlier) answer,
        # defeating the check-time rebinding guard and the per-check policy; ttl_dns_cache=None
        # would mean "cache forever", so the cache is off instead.
        use_dns_cache=False,
        resolver=GuardedResolver(allow_private=allow_private),
    )
    return aiohttp.ClientSession(
        connector=connector,
        trace_configs=[_trace_config()],
        timeout=_NO_TIMEOUT,
        cookie_jar=aiohttp.DummyCookieJar(),  # one session serves every tenant
        headers={"User-Agent": USER_AGENT},
        trust_env=False,
    )


def _guard_each_hop(allow_private: bool):  # type: ignore[no-untyped-def]
    # Every hop, redirects included, passes here before connecting: IP literals never reach
    # the resolver, and a redirect may point at one; names are vetted when resolved.
    guard = Guard(allow_private=allow_private)

    async def middleware(req: aiohttp.ClientRequest, handler):  # type: ignore[no-untyped-def]
        guard.check_hop(req.url.raw_host or "")
        return await handler(req)

    return middleware


def status_expected(status: int, expected: list[Any] | None) -> bool:
    for entry in expected or DEFAULT_EXPECTED_STATUS:
        if isinstance(entry, int):
            low = high = entry
        else:
            low, high = int(entry[0]), int(entry[1])
        if low <= status <= high:
            return True
    return False


def _describe_expected(expected: list[Any] | None) -> str:
    parts = []
    for entry in expected or DEFAULT_EXPECTED_STATUS:
        if isinstance(entry, int) or entry[0] == entry[1]:
            parts.append(str(entry if isinstance(entry, int) else entry[0]))
        else:
            parts.append(f"{entry[0]}-{entry[1]}")
    return ", ".join(parts)


def _headers(response: aiohttp.ClientResponse) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in response.headers.items():
        key = name.lower()
        if key in headers:
            headers[key] = f"{headers[key]}, {value}"
        elif len(headers) < MAX_HEADERS:
            headers[key] = value
    return headers


def _decode(body: bytes, charset: str | None) -> str:
    try:
        encoding = codecs.lookup(charset).name if charset else "utf-8"
    except LookupError:
        encoding = "utf-8"
    return body.decode(encoding, errors="replace")


async def _read_capped(response: aiohttp.ClientResponse) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while size < BODY_LIMIT:
        chunk = await response.content.read(BODY_LIMIT - size)
        if not chunk:
            return b"".join(chunks), False
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks), not response.content.at_eof()


def _ssl_param(config: dict[str, Any]) -> ssl.SSLContext | bool:
    if not config.get("verify_tls", True):
        return False
    ca_pem = config.get("ca_pem")
    return tls_context(ca_pem) if ca_pem else True


def client_error(exc: aiohttp.ClientError, url: str) -> CheckOutcome:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        error = exc.certificate_error
        reason = getattr(error, "verify_message", None) or str(error)
        return down(ErrorClass.TLS, f"TLS certificate not valid for {exc.host}: {reason}")
    if isinstance(exc, aiohttp.ClientConnectorSSLError | aiohttp.ClientSSLError):
        return down(ErrorClass.TLS, f"TLS handshake failed: {exc}")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return down(ErrorClass.DNS, str(exc.os_error) or f"cannot resolve {exc.host}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        if isinstance(os_error, ConnectionRefusedError):
            return down(ErrorClass.CONNECTION, f"connection refused by {exc.host}:{exc.port}")
        reason = os_error.strerror or str(os_error) or type(os_error).__name__
        return down(ErrorClass.CONNECTION, f"cannot connect to {exc.host}:{exc.port}: {reason}")
    if isinstance(exc, aiohttp.TooManyRedirects):
        return down(ErrorClass.PROTOCOL, f"more than {MAX_REDIRECTS} redirects")
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return down(ErrorClass.PROTOCOL, f"not a usable http(s) URL: {exc}")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return down(ErrorClass.CONNECTION, "server closed the connection without answering")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return down(ErrorClass.CONNECTION, f"connection closed mid-response: {exc}")
    if isinstance(exc, aiohttp.ClientResponseError):
        return down(ErrorClass.PROTOCOL, f"malformed HTTP response: {exc.message}")
    return down(ErrorClass.CONNECTION, f"{type(exc).__name__}: {exc or url}")


def _assertion_failures(
    texts: list[str], response: ResponseContext
) -> list[dict[str, str]] | CheckOutcome:
    # Imported late: the assertion language is optional for every other check kind.
    from apps.monitors.assertions import compile_many, evaluate_all

    try:
        compiled = compile_many(texts)
    except ValueError as exc:
        return down(ErrorClass.ASSERTION, f"invalid assertion: {exc}")
    return evaluate_all(compiled, response)


async def _request(
    session: aiohttp.ClientSession,
    spec: CheckSpec,
    state: _CheckState,
    ssl_param: ssl.SSLContext | bool,
) -> CheckOutcome:
    config = spec.config
    url = str(config.get("url") or "")
    body = config.get("body")
    async with session.request(
        str(config.get("method") or "GET").upper(),
        URL(url),
        headers={str(k): str(v) for k, v in (config.get("headers") or {}).items()},
        data=body.encode() if isinstance(body, str) else None,
        allow_redirects=bool(config.get("follow_redirects", True)),
        max_redirects=MAX_REDIRECTS,
        ssl=ssl_param,
        timeout=_NO_TIMEOUT,
        trace_request_ctx=state,
        middlewares=(_guard_each_hop(spec.allow_private),),
    ) as response:
        ttfb = state.since_start()
        cert_der = state.cert_der
        if cert_der is None and response.url.scheme == "https" and response.connection:
            cert_der = peer_cert_der(response.connection.transport)
        raw_body, truncated = await _read_capped(response)
    total = state.since_start()

    timings = {**state.timings(), "ttfb_ms": ms(ttfb), "total_ms": ms(total)}
    headers = _headers(response)
    cert = parse_cert(cert_der) if cert_der and response.url.scheme == "https" else None
    outcome = CheckOutcome(
        outcome=Outcome.UP,
        response_time_ms=ms(total),
        status_code=response.status,
        timings=timings,
        cert_expires_at=cert.not_after if cert else None,
        details={
            "headers": headers,
            "redirects": len(response.history),
            "final_url": str(response.url),
            "remote_address": state.remote,
            "body_bytes": len(raw_body),
            "body_truncated": truncated,
            "queued_ms": ms(state.queued),
        },
    )
    failures: list[dict[str, str]] = []
    if assertions := config.get("assertions"):
        context = ResponseContext(
            status=response.status,
            response_time_ms=ms(total),
            headers=headers,
            body=_decode(raw_body, response.charset),
            cert_expires_in_seconds=cert.seconds_left() if cert else None,
        )
        result = _assertion_failures(list(assertions), context)
        if isinstance(result, CheckOutcome):
            result.status_code, result.timings = outcome.status_code, outcome.timings
            return result
        failures = outcome.assertion_failures = list(result)

    expected = config.get("expected_status")
    if not status_expected(response.status, expected):
        outcome.outcome, outcome.error_class = Outcome.DOWN, ErrorClass.STATUS
        outcome.error_message = f"HTTP {response.status}, expected {_describe_expected(expected)}"
        return outcome
    if failures:
        outcome.outcome, outcome.error_class = Outcome.DOWN, ErrorClass.ASSERTION
        first = failures[0]
        outcome.error_message = (
            f"{len(failures)} assertion(s) failed, first: {first.get('assertion')} "
            f"(expected {first.get('expected')}, got {first.get('actual')})"
        )
        return outcome
    return up_or_slow(spec, outcome)


async def _run(spec: CheckSpec, ctx: RunContext, state: _CheckState) -> CheckOutcome:
    url = str(spec.config.get("url") or "")
    try:
        parsed = URL(url)
    except ValueError as exc:
        return down(ErrorClass.PROTOCOL, f"not a usable http(s) URL: {exc}")
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        return down(ErrorClass.PROTOCOL, f"not a usable http(s) URL: {url!r}")
    try:
        ssl_param = _ssl_param(spec.config)
    except ssl.SSLError as exc:
        return down(ErrorClass.TLS, f"cannot use ca_pem: {exc.reason or exc}")
    try:
        if ctx.http is not None:
            return await _request(ctx.http, spec, state, ssl_param)
        async with make_session(allow_private=spec.allow_private, limit=1) as session:
            return await _request(session, spec, state, ssl_param)
    except BlockedTarget as exc:
        return down(ErrorClass.BLOCKED, str(exc), timings=state.timings())
    except aiohttp.ClientError as exc:
        outcome = client_error(exc, url)
        outcome.timings = state.timings()
        return outcome
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        return down(ErrorClass.CONNECTION, f"{parsed.raw_host}: {reason}", timings=state.timings())


@register("http")
async def check(spec: CheckSpec, ctx: RunContext) -> CheckOutcome:
    state = _CheckState(allow_private=spec.allow_private)
    token = _current.set(state)
    try:
        async with asyncio.timeout(spec.timeout):
            return await _run(spec, ctx, state)
    except TimeoutError:
        return timed_out(spec, state.timings())
    finally:
        _current.reset(token)
