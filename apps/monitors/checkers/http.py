"""HTTP(S) checker, on libcurl's multi interface (`apps.monitors.checkers.curl`, decision 0025).

config: url, method ("GET"), headers ({}), body (None), follow_redirects (True),
verify_tls (True), ca_pem (None: extra trusted CA as PEM text), expected_status
([[200, 399]]: inclusive ranges; a bare int means that status only), assertions ([]).

timings: dns_ms (the guard's lookup), connect_ms (TCP connect *and* TLS handshake),
tls_ms (the TLS handshake alone, https only), ttfb_ms (start until the final response's
headers, redirects included), total_ms. Phases of every hop add up.

Every hop, the first and each redirect, goes through the outbound guard before it connects
(decision 0013): a literal address is checked as it is, a name is resolved once by the guard
and libcurl connects to exactly the vetted address (it never resolves the name itself).
libcurl follows no redirect; this module follows them, hop by hop.
"""

from __future__ import annotations

import asyncio
import codecs
import errno
import os
import re
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

import pycurl
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
from apps.monitors.checkers.curl import CurlClient, Request, Response, is_literal
from apps.monitors.checkers.net import (
    down,
    ms,
    parse_cert,
    timed_out,
    tls_context,
    up_or_slow,
)

BODY_LIMIT = 64 * 1024
MAX_HEADERS = 50
MAX_REDIRECTS = 10
DEFAULT_EXPECTED_STATUS = [[200, 399]]
USER_AGENT = "healthorch-checker/1.0"
_REDIRECTS = frozenset((301, 302, 303, 307, 308))
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an HTTP method or header name
_PHASES = ("dns", "queue", "connect", "tls")


@dataclass
class _CheckState:
    """Per-check facts gathered hop by hop."""

    allow_private: bool
    started: float = field(default_factory=time.monotonic)
    # Seconds per phase over every hop; "queue" is the wait for a slot under the client's limit.
    spent: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_PHASES, 0.0))
    https: bool = False

    @property
    def queued(self) -> float:
        return self.spent["queue"]

    def timings(self) -> dict[str, float]:
        timings = {"dns_ms": ms(self.spent["dns"]), "connect_ms": ms(self.spent["connect"])}
        if self.https:
            timings["tls_ms"] = ms(self.spent["tls"])
        return timings


class _Refused(Exception):
    """A hop that cannot be made; carries its outcome."""

    def __init__(self, outcome: CheckOutcome) -> None:
        super().__init__(outcome.error_message)
        self.outcome = outcome


def make_session(*, allow_private: bool, limit: int) -> CurlClient:
    """The check loop's shared client (also an async context manager). Call from inside a
    running event loop. `allow_private=False` refuses internal addresses for every check;
    True still refuses them for a check whose spec does not allow them."""
    return CurlClient(allow_private=allow_private, limit=limit)


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


def _decode(body: bytes, charset: str | None) -> str:
    try:
        encoding = codecs.lookup(charset).name if charset else "utf-8"
    except LookupError:
        encoding = "utf-8"
    return body.decode(encoding, errors="replace")


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


def _headers(pairs: list[tuple[str, str]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        if key in headers:
            headers[key] = f"{headers[key]}, {value}"
        elif len(headers) < MAX_HEADERS:
            headers[key] = value
    return headers


def _charset(headers: dict[str, str]) -> str | None:
    for param in headers.get("content-type", "").split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


def _check_ca(config: dict[str, Any]) -> None:
    """Raises ssl.SSLError when ca_pem is not a usable certificate (the same test as before
    libcurl: it would only report a vaguer handshake failure)."""
    if config.get("verify_tls", True) and config.get("ca_pem"):
        tls_context(config.get("ca_pem"))


_TLS_HANDSHAKE = frozenset(
    code
    for code in (
        pycurl.E_SSL_CONNECT_ERROR,
        getattr(pycurl, "E_SSL_CERTPROBLEM", 58),
        getattr(pycurl, "E_SSL_CIPHER", 59),
        getattr(pycurl, "E_SSL_CACERT_BADFILE", 77),
        getattr(pycurl, "E_SSL_ISSUER_ERROR", 83),
    )
)
_CERT_INVALID = frozenset((pycurl.E_PEER_FAILED_VERIFICATION, 51))


def curl_error(response: Response, request: Request) -> CheckOutcome:
    """The outcome of a hop libcurl could not complete (`response.error` != 0)."""
    code, message = response.error, response.message
    where = f"{request.host}:{request.port}"
    if response.refused_address:
        return down(
            ErrorClass.BLOCKED,
            f"{request.host}: connection to {response.refused_address} refused, "
            "not an address the guard vetted",
        )
    if code in _CERT_INVALID:
        reason = message.removeprefix("SSL certificate problem: ")
        if "subject name" in reason or "does not match" in reason:
            reason = f"hostname mismatch: {reason}"
        return down(ErrorClass.TLS, f"TLS certificate not valid for {request.host}: {reason}")
    if code in _TLS_HANDSHAKE:
        return down(ErrorClass.TLS, f"TLS handshake failed: {message}")
    if code == pycurl.E_COULDNT_RESOLVE_HOST:
        return down(ErrorClass.DNS, f"cannot resolve {request.host}")
    if code == pycurl.E_COULDNT_CONNECT:
        if response.os_errno == errno.ECONNREFUSED:
            return down(ErrorClass.CONNECTION, f"connection refused by {where}")
        reason = os.strerror(response.os_errno) if response.os_errno else message
        return down(ErrorClass.CONNECTION, f"cannot connect to {where}: {reason}")
    if code == pycurl.E_GOT_NOTHING:
        return down(ErrorClass.CONNECTION, "server closed the connection without answering")
    if code in (pycurl.E_PARTIAL_FILE, pycurl.E_RECV_ERROR, pycurl.E_SEND_ERROR):
        if response.got_headers:
            return down(ErrorClass.CONNECTION, f"connection closed mid-response: {message}")
        return down(ErrorClass.CONNECTION, f"connection lost before the answer: {message}")
    if code in (pycurl.E_UNSUPPORTED_PROTOCOL, pycurl.E_URL_MALFORMAT):
        return down(ErrorClass.PROTOCOL, f"not a usable http(s) URL: {message}")
    if code in (pycurl.E_WEIRD_SERVER_REPLY, pycurl.E_BAD_CONTENT_ENCODING):
        return down(ErrorClass.PROTOCOL, f"malformed HTTP response: {message}")
    if code == pycurl.E_OPERATION_TIMEDOUT:
        return down(ErrorClass.TIMEOUT, f"no answer: {message}")
    return down(ErrorClass.CONNECTION, f"{message or 'transfer failed'} (libcurl error {code})")


async def _vetted(
    client: CurlClient, spec: CheckSpec, host: str, port: int, state: _CheckState
) -> list[str]:
    """The addresses this hop may connect to: a literal as it is (after the literal check
    under the check's own policy), a name as the guard resolved and vetted it (under the
    stricter of the client's and the check's policies)."""
    Guard(allow_private=spec.allow_private).check_hop(host)
    if is_literal(host):
        return [host]
    guard = Guard(allow_private=client.allow_private and spec.allow_private)
    began = time.monotonic()
    try:
        return await guard.resolve_async(host, port)
    finally:
        state.spent["dns"] += time.monotonic() - began


async def _hop(
    client: CurlClient, spec: CheckSpec, state: _CheckState, request: Request
) -> Response:
    """One hop under the client's limit."""
    waited = time.monotonic()
    async with client.gate:
        state.spent["queue"] += time.monotonic() - waited
        request.addresses = await _vetted(client, spec, request.host, request.port, state)
        response = await client.fetch(request)
    connected = max(response.appconnect, response.connect)
    if connected:
        state.spent["connect"] += connected - response.namelookup
    if response.appconnect and response.connect:
        state.spent["tls"] += response.appconnect - response.connect
    return response


def _next_hop(url: URL, response: Response, method: str) -> tuple[URL, str] | None:
    location = next((v for k, v in response.headers if k.lower() == "location"), None)
    if location is None:
        return None
    target = URL(location)
    if not target.is_absolute():
        target = url.join(target)
    if (response.status == 303 and method != "HEAD") or (
        response.status in (301, 302) and method == "POST"
    ):
        method = "GET"
    return target, method


async def _request(client: CurlClient, spec: CheckSpec, state: _CheckState) -> CheckOutcome:
    config = spec.config
    url = URL(str(config.get("url") or ""))
    method = str(config.get("method") or "GET").upper()
    body = config.get("body")
    payload = body.encode() if isinstance(body, str) else None
    headers = [(str(k), str(v)) for k, v in (config.get("headers") or {}).items()]
    follow = bool(config.get("follow_redirects", True))
    if not _TOKEN.fullmatch(method):
        return down(ErrorClass.PROTOCOL, f"not a usable HTTP method: {method!r}")
    for name, value in headers:
        if not _TOKEN.fullmatch(name) or "\r" in value or "\n" in value:
            # libcurl sends header lines as given: a line break would smuggle another header.
            return down(ErrorClass.PROTOCOL, f"not a usable HTTP header: {name!r}")
    redirects = 0
    while True:
        if url.scheme not in ("http", "https") or not url.raw_host:
            return down(ErrorClass.PROTOCOL, f"not a usable http(s) URL: {str(url)!r}")
        state.https = state.https or url.scheme == "https"
        request = Request(
            url=str(url),
            host=url.raw_host,
            port=url.port or (443 if url.scheme == "https" else 80),
            addresses=[],
            method=method,
            headers=headers,
            body=payload,
            body_limit=BODY_LIMIT,
            verify_tls=bool(config.get("verify_tls", True)),
            ca_pem=config.get("ca_pem") or None,
            timeout=spec.timeout,
            user_agent=USER_AGENT,
        )
        response = await _hop(client, spec, state, request)
        if response.error:
            raise _Refused(curl_error(response, request))
        if not (follow and response.status in _REDIRECTS):
            break
        step = _next_hop(url, response, method)
        if step is None:
            break
        redirects += 1
        if redirects >= MAX_REDIRECTS:
            return down(ErrorClass.PROTOCOL, f"more than {MAX_REDIRECTS} redirects")
        target, new_method = step
        if new_method != method:
            payload = None
            headers = [(k, v) for k, v in headers if k.lower() not in ("content-type",)]
        if target.origin() != url.origin():
            # Credentials meant for one origin are not handed to another.
            headers = [(k, v) for k, v in headers if k.lower() != "authorization"]
        url, method = target, new_method

    # The final response on libcurl's clock, from the moment it was handed the transfer: what
    # this process does after libcurl has the whole response (resuming this check among the
    # loop's other callbacks, parsing headers) is not the target's time.
    before = response.began - state.started - state.queued
    ttfb = before + response.starttransfer
    total = before + response.total
    timings = {**state.timings(), "ttfb_ms": ms(ttfb), "total_ms": ms(total)}
    headers_seen = _headers(response.headers)
    https = url.scheme == "https"
    cert = parse_cert(response.cert_der) if https and response.cert_der else None
    outcome = CheckOutcome(
        outcome=Outcome.UP,
        response_time_ms=ms(total),
        status_code=response.status,
        timings=timings,
        cert_expires_at=cert.not_after if cert else None,
        details={
            "headers": headers_seen,
            "redirects": redirects,
            "final_url": str(url),
            "remote_address": response.remote,
            "body_bytes": len(response.body),
            "body_truncated": response.truncated,
            "queued_ms": ms(state.queued),
        },
    )
    failures: list[dict[str, str]] = []
    if assertions := config.get("assertions"):
        context = ResponseContext(
            status=response.status,
            response_time_ms=ms(total),
            headers=headers_seen,
            body=_decode(response.body, _charset(headers_seen)),
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
        _check_ca(spec.config)
    except ssl.SSLError as exc:
        return down(ErrorClass.TLS, f"cannot use ca_pem: {exc.reason or exc}")
    try:
        if ctx.http is not None:
            return await _request(ctx.http, spec, state)
        async with make_session(allow_private=spec.allow_private, limit=1) as client:
            return await _request(client, spec, state)
    except _Refused as refused:
        refused.outcome.timings = state.timings()
        return refused.outcome
    except (BlockedTarget, ResolutionFailed) as exc:
        error_class = ErrorClass.BLOCKED if isinstance(exc, BlockedTarget) else ErrorClass.DNS
        return down(error_class, str(exc), timings=state.timings())
    except ValueError as exc:  # a redirect to a Location that is not a URL
        return down(ErrorClass.PROTOCOL, f"not a usable http(s) URL: {exc}")


@register("http")
async def check(spec: CheckSpec, ctx: RunContext) -> CheckOutcome:
    state = _CheckState(allow_private=spec.allow_private)
    try:
        async with asyncio.timeout(spec.timeout):
            return await _run(spec, ctx, state)
    except TimeoutError:
        return timed_out(spec, state.timings())
