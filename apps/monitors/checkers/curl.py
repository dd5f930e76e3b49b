"""An HTTP client on libcurl's multi interface, driven by the running asyncio event loop.

Why (decision 0025): with a new connection per check, aiohttp spends about 0.6 ms of CPU per
request in Python; libcurl does the connection, the request and the response parsing in C, so
a check loop process can start far more checks per second on the same core.

How it rides the loop: one multi handle per client. libcurl says which sockets it wants to
wait on (CURLMOPT_SOCKETFUNCTION) and when it next needs a call (CURLMOPT_TIMERFUNCTION); the
client registers those sockets with `loop.add_reader`/`add_writer` and the timer with
`loop.call_later`, and hands every readiness back with `socket_action`. No thread, no
polling: the loop sleeps until a socket or a timer is due, and every transfer of the process
shares that one wait.

What a transfer may do is narrowed on every easy handle: http and https only, no proxy
(whatever the environment says), no redirects followed by libcurl (the caller follows them
hop by hop through the outbound guard), no connection or TLS session reuse (a check measures a
whole new connection), and the connection goes only to the addresses the guard vetted: the
name is pinned with CURLOPT_CONNECT_TO (libcurl never resolves it), and CURLOPT_OPENSOCKET
refuses any address outside the vetted set (a second lock on the same door).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pycurl

_PROTOCOLS = pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS
_REUSED_HANDLES = 256  # easy handles kept for reuse (reset between transfers)


@lru_cache(maxsize=1)
def system_trust() -> tuple[str | None, str | None]:
    """The CA bundle file and directory OpenSSL (and so aiohttp) trusts on this machine; the
    libcurl of the wheel was built elsewhere and must not guess its own."""
    paths = ssl.get_default_verify_paths()
    return paths.cafile, paths.capath


@lru_cache(maxsize=4096)
def same_address(address: str) -> str:
    """The canonical text of an IP address (so '::0001' and '::1' compare equal)."""
    try:
        return str(ipaddress.ip_address(address.split("%", 1)[0]))
    except ValueError:
        return address


@dataclass
class Request:
    """One hop: a URL, already vetted, and where it may connect."""

    url: str
    host: str  # as in the URL, without brackets
    port: int
    addresses: list[str]  # vetted, in the order to try
    method: str = "GET"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    body_limit: int = 64 * 1024
    verify_tls: bool = True
    ca_pem: str | None = None
    timeout: float = 30.0
    user_agent: str = "healthorch-checker/1.0"


@dataclass
class Response:
    """What a hop brought back; `error` is libcurl's code (0: a whole HTTP response)."""

    error: int = 0
    message: str = ""
    os_errno: int = 0
    status: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    truncated: bool = False
    remote: str | None = None
    # Seconds from the transfer's start, as libcurl measured them (0.0 when not reached).
    namelookup: float = 0.0
    connect: float = 0.0
    appconnect: float = 0.0
    starttransfer: float = 0.0
    total: float = 0.0
    # time.monotonic() when this transfer was handed to libcurl (the last address tried).
    began: float = 0.0
    cert_der: bytes | None = None
    refused_address: str | None = None  # an address outside the vetted set was asked for
    got_headers: bool = False


class _Collector:
    """The easy handle's callbacks for one transfer: headers, the capped body, the pin."""

    __slots__ = ("allowed", "chunks", "got_headers", "headers", "limit", "refused", "size")

    def __init__(self, limit: int, allowed: Iterable[str]) -> None:
        self.limit = limit
        self.allowed = frozenset(same_address(a) for a in allowed)
        self.chunks: list[bytes] = []
        self.size = 0
        self.headers: list[tuple[str, str]] = []
        self.refused: str | None = None
        self.got_headers = False

    def write(self, data: bytes) -> int | None:
        room = self.limit - self.size
        if len(data) > room:
            if room > 0:
                self.chunks.append(data[:room])
                self.size += room
            self.size += 1  # marks the body as cut (read back as `truncated`)
            return 0  # fewer bytes than given: libcurl stops the transfer (CURLE_WRITE_ERROR)
        self.chunks.append(data)
        self.size += len(data)
        return None

    def header(self, line: bytes) -> None:
        if line[:5] == b"HTTP/":
            # A new response (after a 1xx): its headers replace any earlier ones.
            self.headers = []
            self.got_headers = True
            return
        name, sep, value = line.decode("iso-8859-1").partition(":")
        if sep:
            self.headers.append((name.strip(), value.strip()))

    def open_socket(self, _purpose: int, address: tuple) -> Any:
        family, socktype, protocol, peer = address
        if same_address(str(peer[0])) not in self.allowed:
            self.refused = str(peer[0])
            return pycurl.SOCKET_BAD
        return _Descriptor(socket.socket(family, socktype, protocol).detach())


class _Descriptor:
    """A socket's descriptor handed to libcurl through OPENSOCKETFUNCTION.

    pycurl gives libcurl a duplicate of `fileno()` and lets go of this object at once, which
    closes ours. A socket object dropped that way would close it too, but only after building
    an "unclosed socket" ResourceWarning, whose text asks the kernel for both of the socket's
    addresses: about 10 µs of every check.
    """

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd

    def __del__(self) -> None:
        os.close(self.fd)


def _connect_to(host: str, port: int, address: str) -> str:
    shown = f"[{address}]" if ":" in address else address
    return f"{host}:{port}:{shown}:{port}"


@lru_cache(maxsize=4096)
def is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class CurlClient:
    """A libcurl multi handle on the running event loop; at most `limit` transfers at once
    (the rest wait their turn, and the wait is reported apart from the response time)."""

    def __init__(self, *, allow_private: bool, limit: int) -> None:
        self.allow_private = allow_private
        self.limit = max(1, limit)
        self.closed = False
        self._loop = asyncio.get_running_loop()
        self._gate = asyncio.Semaphore(self.limit)
        self._multi = pycurl.CurlMulti()
        self._multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        self._multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        self._timer: asyncio.Handle | None = None
        self._watched: dict[int, int] = {}  # fd -> pycurl.POLL_* it is registered for
        self._active: dict[pycurl.Curl, asyncio.Future[tuple[int, str]]] = {}
        self._idle: list[pycurl.Curl] = []

    # --- async context manager, like a session ---

    async def __aenter__(self) -> CurlClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for handle, future in list(self._active.items()):
            with contextlib.suppress(pycurl.error):
                self._multi.remove_handle(handle)
            if not future.done():
                future.cancel()
        self._active.clear()
        for fd in list(self._watched):
            self._unwatch(fd)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for handle in self._idle:
            handle.close()
        self._idle.clear()
        self._multi.close()

    # --- one transfer ---

    @property
    def gate(self) -> asyncio.Semaphore:
        """The slot to hold around a transfer (the caller times its wait)."""
        return self._gate

    async def fetch(self, request: Request) -> Response:
        """One HTTP exchange, to the vetted addresses in order (the next one after a failed
        connect). Never follows a redirect. Runs under the caller's hold of `gate`."""
        response = Response()
        for address in request.addresses:
            response = await self._fetch_one(request, address)
            if response.error != pycurl.E_COULDNT_CONNECT or response.refused_address:
                break
        return response

    async def _fetch_one(self, request: Request, address: str) -> Response:
        handle = self._idle.pop() if self._idle else pycurl.Curl()
        collector = _Collector(request.body_limit, request.addresses)
        self._configure(handle, request, address, collector)
        future: asyncio.Future[tuple[int, str]] = self._loop.create_future()
        self._active[handle] = future
        began = time.monotonic()
        self._multi.add_handle(handle)
        try:
            error, message = await future
            response = self._response(handle, collector, error, message)
            response.began = began
            return response
        finally:
            if self._active.pop(handle, None) is not None:
                # Cancelled (the check's timeout): take it out of the multi, which closes it.
                with contextlib.suppress(pycurl.error):
                    self._multi.remove_handle(handle)
            handle.reset()
            if not self.closed and len(self._idle) < _REUSED_HANDLES:
                self._idle.append(handle)
            else:
                handle.close()

    def _configure(
        self, handle: pycurl.Curl, request: Request, address: str, collector: _Collector
    ) -> None:
        setopt = handle.setopt
        setopt(pycurl.URL, request.url)
        setopt(pycurl.PROTOCOLS, _PROTOCOLS)
        setopt(pycurl.PROXY, "")
        setopt(pycurl.NOSIGNAL, 1)
        setopt(pycurl.FOLLOWLOCATION, 0)
        setopt(pycurl.FRESH_CONNECT, 1)
        setopt(pycurl.FORBID_REUSE, 1)
        setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        setopt(pycurl.USERAGENT, request.user_agent)
        setopt(pycurl.ACCEPT_ENCODING, "gzip, deflate")
        # A backstop only: the check's own timeout cancels the transfer first.
        setopt(pycurl.TIMEOUT_MS, int(request.timeout * 1000) + 1000)
        if not is_literal(request.host):
            setopt(pycurl.CONNECT_TO, [_connect_to(request.host, request.port, address)])
        setopt(pycurl.OPENSOCKETFUNCTION, collector.open_socket)
        setopt(pycurl.WRITEFUNCTION, collector.write)
        setopt(pycurl.HEADERFUNCTION, collector.header)

        headers = [f"{name}: {value}" for name, value in request.headers]
        names = {name.lower() for name, _ in request.headers}
        method = request.method.upper()
        if method == "HEAD":
            setopt(pycurl.NOBODY, 1)
        elif method != "GET" or request.body is not None:
            setopt(pycurl.CUSTOMREQUEST, method)
        if request.body is not None or method in ("POST", "PUT", "PATCH"):
            body = request.body or b""
            setopt(pycurl.POSTFIELDSIZE, len(body))
            setopt(pycurl.POSTFIELDS, body)
            if "content-type" not in names:
                # libcurl's default would claim a form; send what the bytes are.
                headers.append(
                    "Content-Type: application/octet-stream" if body else "Content-Type:"
                )
            headers.append("Expect:")  # no 100-continue round trip for large bodies
        if headers:
            setopt(pycurl.HTTPHEADER, headers)

        if request.url[:6].lower() == "https:":
            setopt(pycurl.OPT_CERTINFO, 1)
            setopt(pycurl.SSL_SESSIONID_CACHE, 0)
            if request.verify_tls:
                cafile, capath = system_trust()
                if cafile:
                    setopt(pycurl.CAINFO, cafile)
                if capath:
                    setopt(pycurl.CAPATH, capath)
                if request.ca_pem:
                    setopt(pycurl.CAINFO_BLOB, request.ca_pem.encode())
            else:
                setopt(pycurl.SSL_VERIFYPEER, 0)
                setopt(pycurl.SSL_VERIFYHOST, 0)

    def _response(
        self, handle: pycurl.Curl, collector: _Collector, error: int, message: str
    ) -> Response:
        getinfo = handle.getinfo
        truncated = collector.size > collector.limit
        if truncated and error == pycurl.E_WRITE_ERROR:
            error, message = 0, ""  # our own stop at the body limit: the response is whole
        response = Response(
            error=error,
            message=message,
            os_errno=getinfo(pycurl.OS_ERRNO) if error else 0,
            status=getinfo(pycurl.RESPONSE_CODE),
            headers=collector.headers,
            body=b"".join(collector.chunks),
            truncated=truncated,
            remote=getinfo(pycurl.PRIMARY_IP) or None,
            namelookup=getinfo(pycurl.NAMELOOKUP_TIME_T) / 1e6,
            connect=getinfo(pycurl.CONNECT_TIME_T) / 1e6,
            appconnect=getinfo(pycurl.APPCONNECT_TIME_T) / 1e6,
            starttransfer=getinfo(pycurl.STARTTRANSFER_TIME_T) / 1e6,
            total=getinfo(pycurl.TOTAL_TIME_T) / 1e6,
            refused_address=collector.refused,
            got_headers=collector.got_headers,
        )
        if response.appconnect and not error:
            response.cert_der = _leaf_der(getinfo(pycurl.INFO_CERTINFO))
        return response

    # --- libcurl <-> event loop ---

    def _on_socket(self, event: int, fd: int, _multi: Any, _data: Any) -> None:
        if event == pycurl.POLL_REMOVE:
            self._unwatch(fd)
            return
        if self._watched.get(fd) == event:
            return
        self._unwatch(fd)
        if event in (pycurl.POLL_IN, pycurl.POLL_INOUT):
            self._loop.add_reader(fd, self._act, fd, pycurl.CSELECT_IN)
        if event in (pycurl.POLL_OUT, pycurl.POLL_INOUT):
            self._loop.add_writer(fd, self._act, fd, pycurl.CSELECT_OUT)
        self._watched[fd] = event

    def _unwatch(self, fd: int) -> None:
        event = self._watched.pop(fd, None)
        if event is None:
            return
        if event in (pycurl.POLL_IN, pycurl.POLL_INOUT):
            self._loop.remove_reader(fd)
        if event in (pycurl.POLL_OUT, pycurl.POLL_INOUT):
            self._loop.remove_writer(fd)

    def _on_timer(self, timeout_ms: int) -> None:
        # Never drive libcurl from inside its own callback: schedule the call instead.
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if timeout_ms == 0:
            # "Now": on the loop's next turn, whatever its clock says (a test may have frozen
            # or moved it; libcurl keeps its own).
            self._timer = self._loop.call_soon(self._on_timeout)
        elif timeout_ms > 0:
            self._timer = self._loop.call_later(timeout_ms / 1000, self._on_timeout)

    def _on_timeout(self) -> None:
        self._timer = None
        self._act(pycurl.SOCKET_TIMEOUT, 0)

    def _act(self, fd: int, event: int) -> None:
        if self.closed:
            return
        self._multi.socket_action(fd, event)
        while True:
            queued, done, failed = self._multi.info_read()
            for handle in done:
                self._finish(handle, 0, "")
            for handle, error, message in failed:
                self._finish(handle, error, message)
            if not queued:
                break

    def _finish(self, handle: pycurl.Curl, error: int, message: str) -> None:
        future = self._active.pop(handle, None)
        self._multi.remove_handle(handle)
        if future is not None and not future.done():
            future.set_result((error, message))


def _leaf_der(certinfo: list[list[tuple[str, str]]] | None) -> bytes | None:
    """The peer's leaf certificate from CURLINFO_CERTINFO (readable even when unverified)."""
    if not certinfo:
        return None
    for key, value in certinfo[0]:
        if key == "Cert":
            return ssl.PEM_cert_to_DER_cert(value)
    return None
