#!/usr/bin/env python
"""A local HTTP target for the check benchmarks: answers every request after a fixed delay.

Raw asyncio (no framework) so the target costs as little CPU as possible on a 2-core machine
that also runs the checker and PostgreSQL. Every answer is `200 OK`, body `ok`, and
`Connection: close`; the target closes first, so TIME_WAIT sockets stay on its side and the
checker's ephemeral ports are not used up.

    .venv/bin/python benchmarks/target.py --port 0 --delay 0.05

Binds 127.0.0.1 only, prints `PORT <n>` once listening, and exits after `--max-seconds`
(default 600) or on SIGTERM/SIGINT, printing how many requests it answered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import sys
import time

RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 2\r\n"
    b"Connection: close\r\n"
    b"\r\n"
    b"ok"
)


class Stats:
    answered = 0


class Answer(asyncio.Protocol):
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.pending: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.pending is not None:
            return
        self.buffer += data
        if b"\r\n\r\n" in self.buffer:  # checks send no body (GET)
            # The delay starts when the request is complete, like a handler that takes 50 ms.
            self.pending = asyncio.get_running_loop().call_later(self.delay, self.answer)

    def answer(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(RESPONSE)
            self.transport.close()
            Stats.answered += 1

    def connection_lost(self, exc: Exception | None) -> None:
        if self.pending is not None:
            self.pending.cancel()
        self.transport = None


async def serve(port: int, delay: float, max_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    server = await loop.create_server(lambda: Answer(delay), sock=sock, backlog=4096)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    started = time.monotonic()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max_seconds)
    server.close()
    cpu = time.process_time()
    print(
        f"target answered {Stats.answered} requests in {time.monotonic() - started:.1f} s, "
        f"cpu {cpu:.1f} s",
        file=sys.stderr,
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds before answering")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.delay, args.max_seconds))


if __name__ == "__main__":
    main()
