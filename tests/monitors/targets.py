"""Real servers on 127.0.0.1 for checker tests, usable from synchronous pytest code.

Each server runs its own asyncio loop in a background thread. Context managers:
`serve_http()`, `serve_https(ca, cert=...)`, `serve_tcp()`, `closed_port()`; certificate
helpers: `issue_cert`, `expired_cert`, `expiring_cert`, `wrong_host_cert`, `ca_pem`;
`run_check` runs one checker from synchronous code.
Fixtures (import them into a conftest or test module): `http_target`, `tls_ca`,
`https_target`, `tcp_target`, `refused_port`.

    target.route("/slow", delay=0.3, status=503)  # returns the URL of that path
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections import Counter
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
import trustme
from aiohttp import web

from apps.monitors.checkers.base import CheckOutcome, CheckSpec, RunContext

HOST = "127.0.0.1"
DEFAULT_IDENTITIES = ("127.0.0.1", "localhost")
T = TypeVar("T")
# How long a hanging route or a silent TCP peer waits before it answers (200) or hangs up. Far
# beyond any check timeout the tests use, so a checker that ignored its own timeout gets an
# answer or a closed connection (and fails the test's "timed out" assertion) instead of hanging
# the suite. A test never waits this long when the checker works.
PEER_PATIENCE_SECONDS = 30.0


def _quiet_client_aborts(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # Checkers drop connections on purpose (a refused certificate, an aborted handshake); the
    # servers' complaints about that would only bury a failing test's real output.
    if isinstance(context.get("exception"), ConnectionError | ssl.SSLError):
        return
    loop.default_exception_handler(context)


class LoopThread:
    """An event loop running in a daemon thread; `run` waits for a coroutine's result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(_quiet_client_aborts)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@dataclass
class Behaviour:
    status: int = 200
    body: str | bytes = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    redirect_to: str | None = None  # answer `status` (302 unless a 3xx is given) to there
    hang: bool = False  # accept the request, answer only after PEER_PATIENCE_SECONDS
    close_mid_response: bool = False  # promise the whole body, send half, drop the connection


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class HttpTarget:
    """A programmable HTTP(S) server: unknown paths answer 404; `requests` records each one,
    `events` the order things happened in: ("answered", path) as a response goes out, ("gone",
    path) when the client gave up on a request still being handled."""

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme
        self.host = HOST
        self.port = 0
        self.routes: dict[str, Behaviour] = {}
        self.hits: Counter[str] = Counter()
        self.requests: list[Seen] = []
        self.server_names: list[str | None] = []  # TLS SNI, HTTPS only
        self.events: list[tuple[str, str]] = []

    def url(self, path: str = "/", host: str | None = None) -> str:
        return f"{self.scheme}://{host or self.host}:{self.port}{path}"

    def route(self, path: str, **behaviour: Any) -> str:
        self.routes[path] = Behaviour(**behaviour)
        return self.url(path)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            response = await self._answer(request)
        except asyncio.CancelledError:
            self.events.append(("gone", request.path))
            raise
        self.events.append(("answered", request.path))
        return response

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        self.hits[request.path] += 1
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(Seen(request.method, request.path, headers, await request.read()))
        behaviour = self.routes.get(request.path)
        if behaviour is None:
            return web.Response(status=404, text="no such route")
        if behaviour.hang:
            await asyncio.sleep(PEER_PATIENCE_SECONDS)
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        if behaviour.redirect_to is not None:
            status = behaviour.status if 300 <= behaviour.status < 400 else 302
            headers = {**behaviour.headers, "Location": behaviour.redirect_to}
            return web.Response(status=status, headers=headers)
        body = behaviour.body.encode() if isinstance(behaviour.body, str) else behaviour.body
        if behaviour.close_mid_response:
            return await self._broken(request, behaviour, body)
        return web.Response(status=behaviour.status, body=body, headers=behaviour.headers)

    async def _broken(
        self, request: web.Request, behaviour: Behaviour, body: bytes
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=behaviour.status, headers=behaviour.headers)
        response.content_length = len(body)
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        assert request.transport is not None
        request.transport.close()
        return response


def _free_socket(host: str = HOST, port: int = 0) -> socket.socket:
    sock = socket.socket()
    sock.bind((host, port))
    return sock


@contextmanager
def _serve_app(
    target: HttpTarget, ssl_context: ssl.SSLContext | None, host: str = HOST
) -> Iterator[HttpTarget]:
    loop = LoopThread()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", target.handle)
    # handler_cancellation stops a hanging handler once the client gives up; the short
    # shutdown_timeout keeps teardown from waiting on handlers that never finish.
    runner = web.AppRunner(app, shutdown_timeout=0.2, handler_cancellation=True, access_log=None)
    sock = _free_socket(host)
    target.host, target.port = host, sock.getsockname()[1]

    async def start() -> None:
        await runner.setup()
        await web.SockSite(runner, sock, ssl_context=ssl_context).start()

    try:
        loop.run(start())
        yield target
    finally:
        loop.run(runner.cleanup())
        loop.stop()


@contextmanager
def serve_http(host: str = HOST) -> Iterator[HttpTarget]:
    """On `host` (another loopback address, such as 127.0.0.2, works too)."""
    with _serve_app(HttpTarget("http"), None, host) as target:
        yield target


@contextmanager
def serve_https(ca: trustme.CA, cert: trustme.LeafCert | None = None) -> Iterator[HttpTarget]:
    """HTTPS with `cert` (default: issued by `ca` for 127.0.0.1 and localhost). The names
    clients asked for in TLS (SNI) are kept in `target.server_names`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    (cert or issue_cert(ca)).configure_cert(context)
    target = HttpTarget("https")
    context.sni_callback = lambda _sock, name, _ctx: target.server_names.append(name)
    with _serve_app(target, context) as target:
        yield target


def ca_pem(ca: trustme.CA) -> str:
    return ca.cert_pem.bytes().decode()


def issue_cert(
    ca: trustme.CA,
    *identities: str,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> trustme.LeafCert:
    return ca.issue_cert(
        *(identities or DEFAULT_IDENTITIES),
        common_name=(identities or DEFAULT_IDENTITIES)[0],
        not_before=not_before,
        not_after=not_after,
    )


def expired_cert(ca: trustme.CA) -> trustme.LeafCert:
    now = datetime.now(UTC)
    return issue_cert(ca, not_before=now - timedelta(days=90), not_after=now - timedelta(days=1))


def expiring_cert(ca: trustme.CA, days: float = 5) -> trustme.LeafCert:
    now = datetime.now(UTC)
    return issue_cert(ca, not_before=now - timedelta(days=1), not_after=now + timedelta(days=days))


def wrong_host_cert(ca: trustme.CA) -> trustme.LeafCert:
    return issue_cert(ca, "wrong.example")


class TcpTarget:
    def __init__(self) -> None:
        self.port = 0
        self.accepted = 0


@contextmanager
def serve_tcp(*, silent: bool = False, host: str = HOST, port: int = 0) -> Iterator[TcpTarget]:
    """A listener that accepts each connection and closes it at once, or, when `silent`,
    keeps it open without sending a byte (a peer that stalls a TLS handshake) until the client
    gives up or PEER_PATIENCE_SECONDS pass. `accepted` counts connections: a test that must see
    none asserts it stays 0."""
    target = TcpTarget()
    loop = LoopThread()
    sock = _free_socket(host, port)
    target.port = sock.getsockname()[1]

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target.accepted += 1
        if silent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reader.read(), PEER_PATIENCE_SECONDS)
        writer.close()

    async def start() -> asyncio.Server:
        return await asyncio.start_server(accept, sock=sock)

    server = loop.run(start())

    async def stop() -> None:
        server.close()
        await server.wait_closed()

    try:
        yield target
    finally:
        loop.run(stop())
        loop.stop()


@contextmanager
def closed_port() -> Iterator[int]:
    """A port that refuses connections: bound but not listening, so nothing else can take it."""
    sock = _free_socket()
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def run_check(check: Any, spec: CheckSpec, *, shared_session: bool | None = None) -> CheckOutcome:
    """Run a checker in a fresh event loop. With `shared_session` set, the check goes through
    the batch runner's session, made with that allow_private, instead of its own."""
    from apps.monitors.checkers.http import make_session

    async def go() -> CheckOutcome:
        if shared_session is None:
            return await check(spec, RunContext())
        async with make_session(allow_private=shared_session, limit=10) as session:
            return await check(spec, RunContext(http=session))

    return asyncio.run(go())


@pytest.fixture
def http_target() -> Iterator[HttpTarget]:
    with serve_http() as target:
        yield target


@pytest.fixture
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https_target(tls_ca: trustme.CA) -> Iterator[HttpTarget]:
    with serve_https(tls_ca) as target:
        yield target


@pytest.fixture
def tcp_target() -> Iterator[TcpTarget]:
    with serve_tcp() as target:
        yield target


@pytest.fixture
def refused_port() -> Iterator[int]:
    with closed_port() as port:
        yield port
