"""Name resolution the test controls, for the outbound guard's tests.

Why resolution is replaced in-process: the guard resolves with `socket.getaddrinfo`, which
asks the machine's resolver (/etc/hosts, then the servers in /etc/resolv.conf on port 53).
Neither can be pointed at a per-test DNS server (`tests/monitors/dnsserver.py` answers only
clients told its port, as the DNS checker is), and no real server can answer "public now,
loopback a second later" for the system resolver here. So `Names` stands in for
`socket.getaddrinfo` for the names a test declares (everything else goes to the real one),
and counts how often each was asked.

Addresses a name "resolves public" to are documentation addresses (198.51.100.0/24); the
tests never connect to them: the guard must refuse, or pin, before any connection.

Fixtures (import them into the test module): `names`, `loopback_stand_in`, `pin_pair`.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from apps.core import ssrf
from tests.monitors.targets import HttpTarget, TcpTarget, serve_http, serve_tcp

PUBLIC = "198.51.100.7"  # documentation range: never connected to
STAND_IN = "127.0.0.2"  # a loopback address some tests let the guard treat as public


class Names:
    """`socket.getaddrinfo` with answers the test sets: `set("a.test", first, then, ...)`
    answers `first` to the first lookup, `then` to the second, and the last one after."""

    def __init__(self, system: Callable[..., list[Any]]) -> None:
        self.system = system
        self.plan: dict[str, list[list[str]]] = {}
        self.asked: Counter[str] = Counter()

    def set(self, name: str, *answers: str | list[str]) -> None:
        self.plan[name.lower()] = [[a] if isinstance(a, str) else list(a) for a in answers]

    def __call__(
        self, host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[Any]:
        name = (host.decode() if isinstance(host, bytes) else str(host or "")).rstrip(".").lower()
        answers = self.plan.get(name)
        if answers is None:
            return self.system(host, port, family, type, proto, flags)
        addresses = answers[min(self.asked[name], len(answers) - 1)]
        self.asked[name] += 1
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        out: list[Any] = []
        for address in addresses:
            out.extend(
                self.system(address, port, family, type, proto, flags | socket.AI_NUMERICHOST)
            )
        return out


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> Names:
    table = Names(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", table)
    return table


@pytest.fixture
def loopback_stand_in(monkeypatch: pytest.MonkeyPatch) -> str:
    """127.0.0.2 counts as a public address for this test. No public address can be served
    here, yet a redirect hop needs a first server the guard lets through while private
    targets are refused; every other loopback, private and reserved address stays blocked."""
    blocked = ssrf.is_blocked_address
    monkeypatch.setattr(
        ssrf, "is_blocked_address", lambda address: str(address) != STAND_IN and blocked(address)
    )
    return STAND_IN


@dataclass
class PinPair:
    """A server on 127.0.0.1 and a bare listener on 127.0.0.2, on the same port: a name that
    answers 127.0.0.1 first and 127.0.0.2 afterwards shows which answer was connected to."""

    checked: HttpTarget
    decoy: TcpTarget

    @property
    def port(self) -> int:
        return self.checked.port


@contextmanager
def serve_pin_pair() -> Iterator[PinPair]:
    with ExitStack() as stack:
        for _ in range(20):  # the port free on 127.0.0.1 may be taken on 127.0.0.2
            checked = stack.enter_context(serve_http())
            try:
                decoy = stack.enter_context(serve_tcp(host=STAND_IN, port=checked.port))
            except OSError:
                continue
            yield PinPair(checked, decoy)
            return
        raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")


@pytest.fixture
def pin_pair(names: Names) -> Iterator[PinPair]:
    with serve_pin_pair() as pair:
        yield pair
