"""The one way out: every request healthorch makes to an address someone configured.

Senders (alert webhooks, Apprise channels, healing actions, the canary, the self heartbeat,
the root-cause language model) and the check engine ask here, so timeouts, the user agent,
the address rules (`apps.core.ssrf`) and pinning live in one place.

Pinning: a name is resolved once, every address of the answer is vetted, and the connection
goes to exactly a vetted address. Nothing resolves the name a second time, so a DNS answer
that changes between the check and the connection (rebinding) cannot slip an internal address
past the guard. Pinning applies even when private targets are allowed.

- `Guard`: the policy of one use, `Guard.for_tenant()` (the operator's
  `HEALTHORCH_ALLOW_PRIVATE_TARGETS` decides whether internal addresses are refused) or
  `Guard.for_operator()` (URLs from settings: never refused, still pinned).
- `request()`: one `requests` call through a session whose adapter resolves, vets and
  connects to the vetted address while sending the original Host header and using the
  original name for TLS SNI and certificate verification. Redirects are refused unless the
  caller allows some; each followed hop goes through the same adapter, so it is vetted and
  pinned like the first.
- `pinned_lookups()`: for a client healthorch cannot hand a session to (Apprise's plugins call
  `requests` and `smtplib` themselves): inside the block, every name lookup is vetted, and a
  name asked again gets the answer that was vetted the first time.
- `Guard.resolve_async()` / `Guard.check_hop()`: the check engine vets every hop with them
  (HTTP monitors hand libcurl the vetted address, decision 0025; the Kubernetes checker's
  aiohttp resolver returns only vetted addresses, so both are pinned too).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from apps.core import ssrf

USER_AGENT = "healthorch/1"
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Guard:
    """Where one use may connect: internal addresses refused or not; always pinned."""

    allow_private: bool

    @classmethod
    def for_tenant(cls) -> Guard:
        """A URL a tenant entered: internal addresses refused unless the operator allows
        them (`HEALTHORCH_ALLOW_PRIVATE_TARGETS`, on in the embedded default and tests)."""
        return cls(allow_private=bool(settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS))

    @classmethod
    def for_operator(cls) -> Guard:
        """A URL the operator set in settings (canary, self heartbeat, language model): it
        may well be internal on purpose, so nothing is refused, but it is still pinned."""
        return cls(allow_private=True)

    def check_hop(self, host: str) -> None:
        """Refuse a literal internal address or a loopback name without resolving (a
        redirect may point at one; names are vetted when resolved)."""
        ssrf.check_literal(host, allow_private=self.allow_private)

    def resolve(self, host: str, port: int) -> list[str]:
        """The vetted addresses of `host`, resolved once. Raises `ssrf.BlockedTarget` or
        `ssrf.ResolutionFailed`."""
        return ssrf.resolve_blocking(host, port, allow_private=self.allow_private)

    async def resolve_async(self, host: str, port: int) -> list[str]:
        """`resolve` off the event loop, for the check engine."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.resolve, host, port)


# --- requests -----------------------------------------------------------------------------------


def _host_header(host: str, port: int | None, scheme: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port in (None, DEFAULT_PORTS.get(scheme)) else f"{shown}:{port}"


class PinnedAdapter(HTTPAdapter):
    """Sends each request (each redirect hop is one) to a vetted address of its host.

    The URL keeps its name: urllib3 is handed the address as the pool's host, the name as
    the TLS server name (SNI) and as the name the certificate must match, and the request
    carries the name in its Host header. Pools are keyed by address and name together, so a
    connection opened for one name never serves another.
    """

    def __init__(self, guard: Guard) -> None:
        super().__init__(max_retries=0)
        self.guard = guard
        self._local = threading.local()  # the address the current send is pinned to

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        name = host_params["host"]
        host_params["host"] = self._local.address
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = name
            if verify is not False:
                pool_kwargs["assert_hostname"] = name
        return host_params, pool_kwargs

    def send(  # type: ignore[override]
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        if proxies:
            # A proxy would resolve the name itself, out of the guard's sight.
            raise requests.exceptions.InvalidURL("outbound requests do not use proxies")
        parts = urlsplit(request.url or "")
        host = parts.hostname or ""
        scheme = parts.scheme.lower()
        port = parts.port or DEFAULT_PORTS.get(scheme, 80)
        addresses = self.guard.resolve(host, port)
        request.headers["Host"] = _host_header(host, parts.port, scheme)
        last: requests.ConnectionError | None = None
        for address in addresses:
            self._local.address = address
            try:
                return super().send(request, stream, timeout, verify, cert, None)
            except requests.ConnectionError as exc:
                # Another vetted address is tried only when this one took no connection
                # (nothing was sent); any later failure is the caller's to see.
                if not _not_connected(exc):
                    raise
                last = exc
            finally:
                self._local.address = None
        assert last is not None  # resolve() never returns an empty list
        raise last


def _not_connected(exc: requests.ConnectionError) -> bool:
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def session(
    guard: Guard, *, max_redirects: int = 0, user_agent: str = USER_AGENT
) -> requests.Session:
    """A session whose every request and redirect hop is vetted and pinned. The environment
    is ignored (no proxies, no netrc, no CA bundle from variables)."""
    s = requests.Session()
    s.trust_env = False
    # requests computes the next hop of a 3xx even when not following it, and counts that
    # against the limit: keep the limit at least 1 so an unfollowed 3xx is simply returned.
    s.max_redirects = max(max_redirects, 1)
    adapter = PinnedAdapter(guard)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    s.headers["User-Agent"] = user_agent
    return s


def request(
    method: str,
    url: str,
    *,
    guard: Guard,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    max_redirects: int = 0,
    user_agent: str = USER_AGENT,
    **kwargs: Any,
) -> requests.Response:
    """One request through a pinned session. `max_redirects=0` (the default) does not follow
    a redirect: the 3xx is returned for the caller to refuse. The response is streamed (its
    body is not read here): close it, or read it with `read_capped`.

    Raises `ssrf.BlockedTarget` (refused before any byte left), `ssrf.ResolutionFailed`, or
    the `requests` errors (`requests.TooManyRedirects` past `max_redirects`)."""
    kwargs.setdefault("stream", True)
    with session(guard, max_redirects=max_redirects, user_agent=user_agent) as s:
        return s.request(method, url, timeout=timeout, allow_redirects=max_redirects > 0, **kwargs)


def read_capped(response: requests.Response, limit: int) -> bytes:
    """At most `limit` bytes of a streamed body, so a hostile peer cannot feed us gigabytes."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=min(limit, 64 * 1024) or 1):
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


# --- pinned lookups, for clients that resolve by themselves ------------------------------------


class BlockedLookup(socket.gaierror):
    """A lookup the guard refused: the client sees a failed resolution, so nothing is sent."""


@dataclass
class _Scope:
    guard: Guard
    answers: dict[str, list[str]] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def lookup(
        self,
        system: Callable[..., list[Any]],
        host: Any,
        port: Any,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[Any]:
        # The system's lookups below must not come back here (another copy of the hook may
        # sit under this one): they run outside the scope.
        token = _scope.set(None)
        try:
            return self._lookup(system, host, port, family, type, proto, flags)
        finally:
            _scope.reset(token)

    def _lookup(
        self,
        system: Callable[..., list[Any]],
        host: Any,
        port: Any,
        family: int,
        type: int,
        proto: int,
        flags: int,
    ) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host or "")
        key = name.strip("[]").rstrip(".").lower()
        with self.lock:
            addresses = self.answers.get(key)
        if addresses is None:
            try:
                self.guard.check_hop(name)
                infos = system(host, port, family, type, proto, flags)
                addresses = list(dict.fromkeys(info[4][0] for info in infos))
                ssrf.vet_addresses(name, addresses, allow_private=self.guard.allow_private)
            except ssrf.BlockedTarget as exc:
                with self.lock:
                    self.refused.append(str(exc))
                raise BlockedLookup(socket.EAI_FAIL, str(exc)) from exc
            with self.lock:
                addresses = self.answers.setdefault(key, addresses)
        # Only the vetted addresses, formatted by the system for this call's family and
        # socket type: numeric lookups, so no second query leaves.
        out: list[Any] = []
        for address in addresses:
            with contextlib.suppress(socket.gaierror):
                out.extend(
                    system(address, port, family, type, proto, flags | socket.AI_NUMERICHOST)
                )
        if not out:
            raise socket.gaierror(socket.EAI_FAMILY, f"{name} has no address of that family")
        return out


_scope: ContextVar[_Scope | None] = ContextVar("healthorch_outbound_scope", default=None)
_install_lock = threading.Lock()


def _install_hook() -> None:
    """Put the pinning lookup in front of whatever `socket.getaddrinfo` is now (once; again
    only if something replaced it since). Outside a `pinned_lookups` block it just passes
    through, so the rest of the process never notices it."""
    with _install_lock:
        current = socket.getaddrinfo
        if getattr(current, "healthorch_pinned", False):
            return

        def getaddrinfo(
            host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
        ) -> list[Any]:
            scope = _scope.get()
            if scope is None:
                return current(host, port, family, type, proto, flags)
            return scope.lookup(current, host, port, family, type, proto, flags)

        getaddrinfo.healthorch_pinned = True  # type: ignore[attr-defined]
        socket.getaddrinfo = getaddrinfo


@contextlib.contextmanager
def pinned_lookups(guard: Guard, *hosts: tuple[str, int]) -> Iterator[_Scope]:
    """Inside the block, every `socket.getaddrinfo` in this context (and in threads started
    with a copy of it, as Apprise's are) is vetted by `guard` and pinned: the first vetted
    answer for a name is the only one given for it. `hosts` are resolved on entry, so a
    refused one raises `ssrf.BlockedTarget` before the client runs (one that does not
    resolve is left for the client to fail on). Keep only the client's call inside: any
    other connection opened there (a cache, a broker) would be vetted as a target too. After the block, `scope.refused` says whether the client was refused a lookup."""
    _install_hook()
    scope = _Scope(guard)
    token = _scope.set(scope)
    try:
        for host, port in hosts:
            try:
                socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except BlockedLookup as exc:
                raise ssrf.BlockedTarget(scope.refused[-1]) from exc
            except socket.gaierror:
                # Not the guard's to report: the client fails on it with its own message (a
                # name that resolves later is vetted then).
                pass
        yield scope
    finally:
        _scope.reset(token)
