"""The aiohttp session of the checkers that still speak HTTP through aiohttp (kubernetes).

HTTP monitors use libcurl (`apps.monitors.checkers.curl`, decision 0025); this session keeps
the same pinning for the Kubernetes API checks: names resolve through the outbound guard
(`apps.core.outbound.Guard`) and aiohttp connects to exactly the vetted addresses.
"""

from __future__ import annotations

import socket

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from apps.core.outbound import Guard
from apps.core.ssrf import ResolutionFailed
from apps.monitors.checkers.base import CheckOutcome, ErrorClass
from apps.monitors.checkers.net import down

USER_AGENT = "healthorch-checker/1.0"
MAX_REDIRECTS = 10
# The check's own timeout bounds everything; a session-wide one would only race it.
_NO_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=None, sock_read=None, sock_connect=None)


class GuardedResolver(AbstractResolver):
    """Resolves through the outbound guard, so aiohttp connects to exactly the vetted
    addresses."""

    def __init__(self, *, allow_private: bool) -> None:
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await Guard(allow_private=self.allow_private).resolve_async(host, port)
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


def make_session(*, allow_private: bool, limit: int) -> aiohttp.ClientSession:
    """A pinned session (new connection per request, no DNS cache, no cookies, no proxy from
    the environment). Call from inside a running event loop."""
    connector = aiohttp.TCPConnector(
        force_close=True,
        limit=limit,
        # A cache would let a request reuse an earlier answer, defeating the check-time guard.
        use_dns_cache=False,
        resolver=GuardedResolver(allow_private=allow_private),
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=_NO_TIMEOUT,
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": USER_AGENT},
        trust_env=False,
    )


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
