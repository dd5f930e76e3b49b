"""Real peers for the healing tests.

- `FlakyService`: an HTTP service on 127.0.0.1 with `GET /health` (200 when healthy, 503 when
  broken) and `POST /restart`, which verifies the X-Healthorch-Signature like a customer's
  restart hook would and, when accepted, makes the service healthy again. `restart_status`
  scripts a failing hook; `restarts` keeps the verified bodies and their arrival times.
- `Work`: the healing task queue as the services see it (`apps.healing.services.queue.send`
  records instead of publishing to the broker); `drain()` runs the recorded tasks here, so a
  test drives the story step by step. The broker path is the same thin task wrapper.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from apps.core.signing import verify_signature
from apps.healing import services
from tests.monitors.targets import HttpTarget, Seen, _serve_app

RESTART_SECRET = "restart-hook-secret-0123456789abcdef"


class FlakyService(HttpTarget):
    def __init__(self) -> None:
        super().__init__("http")
        self.healthy = True
        self.restart_status = 200
        # False: the hook answers 200 but the service stays broken (a restart that does not help).
        self.restart_fixes = True
        self.restarts: list[dict[str, Any]] = []
        self.restart_arrivals: list[float] = []
        self.bad_signatures = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(Seen(request.method, request.path, headers, body))
        if request.path == "/health":
            if self.healthy:
                return web.Response(status=200, text="ok")
            return web.Response(status=503, text="unavailable")
        if request.path == "/restart" and request.method == "POST":
            self.restart_arrivals.append(time.perf_counter())
            if not verify_signature(
                RESTART_SECRET,
                headers.get("x-healthorch-timestamp"),
                body,
                headers.get("x-healthorch-signature"),
            ):
                self.bad_signatures += 1
                return web.Response(status=401, text="bad signature")
            if self.restart_status != 200:
                return web.Response(status=self.restart_status, text="restart failed")
            self.restarts.append(json.loads(body))
            self.healthy = self.healthy or self.restart_fixes
            return web.Response(status=200, text="restarted")
        return web.Response(status=404, text="no such route")


@contextmanager
def serve_flaky() -> Iterator[FlakyService]:
    with _serve_app(FlakyService(), None) as service:
        yield service


@dataclass
class Work:
    capture: Any
    queue: list[tuple[str, str, float | None]] = field(default_factory=list)

    def record(self, what: str, attempt_id: str, countdown: float | None = None) -> None:
        self.queue.append((what, attempt_id, countdown))

    def drain(self, *, now=None, limit: int = 20) -> list[str]:
        ran = []
        for _ in range(limit):
            if not self.queue:
                break
            what, pk, _ = self.queue.pop(0)
            with self.capture(execute=True):
                if what == "execute":
                    services.attempt_execute(attempt_id=pk)
                else:
                    services.attempt_verify(attempt_id=pk, now=now)
            ran.append(what)
        return ran
