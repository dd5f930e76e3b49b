"""A tiny authoritative DNS server on 127.0.0.1 for checker tests.

One zone held in memory and changed per test through `set()`/`clear()`. Names the zone does
not hold answer NXDOMAIN; names it holds under another type answer NOERROR with no records,
which is what a real authoritative server does and what the checker's "no answer" path needs.
UDP and TCP listen on the same port so a truncated answer could fall back to TCP.
"""

from __future__ import annotations

import threading

from dnslib import AAAA, CNAME, MX, QTYPE, RCODE, RR, TXT, A, DNSLabel
from dnslib.server import BaseResolver, DNSLogger, DNSServer

_RDATA = {
    "A": A,
    "AAAA": AAAA,
    "CNAME": CNAME,
    "MX": lambda value: MX(value.split()[1], int(value.split()[0])),
    # A tuple keeps a record's several character-strings apart, as on the wire.
    "TXT": lambda value: TXT(list(value) if isinstance(value, tuple) else value),
}


class ZoneResolver(BaseResolver):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[tuple[str, str], tuple[int, list]] = {}

    def set(self, name: str, rtype: str, *values: str | tuple[str, ...], ttl: int = 300) -> None:
        rdatas = [_RDATA[rtype](value) for value in values]
        with self._lock:
            self._records[(_key(name), rtype)] = (ttl, rdatas)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def resolve(self, request, handler):
        reply = request.reply()
        qname, qtype = request.q.qname, QTYPE[request.q.qtype]
        with self._lock:
            records = dict(self._records)
        name = _key(qname)
        if not any(key[0] == name for key in records):
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        # Follow a CNAME chain inside the zone like an authoritative server would, bounded
        # so a looping zone cannot hang the test.
        for _ in range(8):
            if (name, qtype) in records:
                ttl, rdatas = records[(name, qtype)]
                for rdata in rdatas:
                    reply.add_answer(RR(name, QTYPE.reverse[qtype], rdata=rdata, ttl=ttl))
                break
            if (name, "CNAME") not in records:
                break
            ttl, (target,) = records[(name, "CNAME")]
            reply.add_answer(RR(name, QTYPE.CNAME, rdata=target, ttl=ttl))
            name = _key(target.label)
        reply.header.aa = 1
        return reply


def _key(name) -> str:
    return str(DNSLabel(str(name))).lower().rstrip(".")


class LocalDNSServer:
    """UDP and TCP listeners on one free port of 127.0.0.1."""

    def __init__(self) -> None:
        self.zone = ZoneResolver()
        self.host = "127.0.0.1"
        self.port = 0
        self._servers: list[DNSServer] = []

    def start(self) -> LocalDNSServer:
        logger = DNSLogger(log="-request,-reply", prefix=False)
        # The kernel picks a free UDP port; the same TCP port may be taken, so try again.
        for _ in range(20):
            udp = DNSServer(self.zone, address=self.host, port=0, logger=logger)
            port = udp.server.server_address[1]
            try:
                tcp = DNSServer(self.zone, address=self.host, port=port, tcp=True, logger=logger)
            except OSError:
                udp.server.server_close()
                continue
            self.port = port
            self._servers = [udp, tcp]
            for server in self._servers:
                server.start_thread()
            return self
        raise RuntimeError("no port free for both UDP and TCP on 127.0.0.1")

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()
        self._servers = []

    def set(self, name: str, rtype: str, *values: str | tuple[str, ...], ttl: int = 300) -> None:
        self.zone.set(name, rtype, *values, ttl=ttl)

    def clear(self) -> None:
        self.zone.clear()
