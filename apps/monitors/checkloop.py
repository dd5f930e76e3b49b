"""The check loop: one long-lived event loop per worker process that runs every batch's checks.

A `run_checks` task hands its specs to the loop and waits for their outcomes; the loop starts
each check at its turn of one process-wide pace (not per batch), within one process-wide cap
on checks in flight, over one HTTP session that lives as long as the process. Several tasks
(a worker on the threads pool) feed the same loop at once, so while one task records its
batch the loop is already checking the next: checking and recording overlap, and no batch
waits for another's slowest check.

The loop runs only checks: no database work happens on its thread (the task's own thread
loads and records), so a test transaction or a task's connection is never shared across
threads. The thread is started on first use in the process that uses it (after a prefork
pool's fork, never before).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import os
import threading
import time
from collections.abc import Callable

from apps.monitors.checkers.base import (
    REGISTRY,
    CheckOutcome,
    CheckSpec,
    ErrorClass,
    Outcome,
    RunContext,
)

logger = logging.getLogger(__name__)

# Checks in flight in the whole process (it was per batch with one batch per process: the
# same bound). At 1,667 checks/s of targets answering in 50 ms about 85 are in flight.
LOOP_CONCURRENCY = 200
# Starts per second, process-wide. Evenly paced starts keep the measured latency honest
# (decisions 0002 and 0017); a burst of a dispatcher tick's batches is spread at this pace.
# It must stay above the throughput a process is sized for (1,667/s = 100,000/min).
LOOP_START_RATE_PER_SECOND = 3000.0


def _load_checkers() -> None:
    # Importing the modules registers their kinds.
    from apps.monitors.checkers import (  # noqa: F401
        dns,
        grpc,
        http,
        icmp,
        kubernetes,
        postgres,
        redis,
        smtp,
        tcp,
        tls,
    )


async def check_one(spec: CheckSpec, ctx: RunContext) -> CheckOutcome:
    """One check within its timeout (plus a small grace for the checker to report); every
    failure, a checker's own bug included, becomes an outcome."""
    checker = REGISTRY.get(spec.kind)
    if checker is None:
        return CheckOutcome(
            Outcome.DOWN,
            error_class=ErrorClass.PROTOCOL,
            error_message=f"no checker for kind {spec.kind}",
        )
    try:
        async with asyncio.timeout(spec.timeout + 2):
            return await checker(spec, ctx)
    except TimeoutError:
        return CheckOutcome(
            Outcome.DOWN,
            error_class=ErrorClass.TIMEOUT,
            error_message=f"no answer within {spec.timeout:g}s",
        )
    except Exception as exc:  # a checker bug must not take the batch down
        logger.exception("checker crashed", extra={"monitor": spec.monitor_id})
        return CheckOutcome(
            Outcome.DOWN,
            error_class="internal",
            error_message=f"{type(exc).__name__}: {exc}"[:500],
        )


class CheckLoop:
    """An event loop on its own thread, shared by every caller in the process."""

    def __init__(
        self,
        *,
        concurrency: int = LOOP_CONCURRENCY,
        start_rate: float = LOOP_START_RATE_PER_SECOND,
    ) -> None:
        self.concurrency = concurrency
        self.spacing = 1.0 / start_rate
        self.pid = os.getpid()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_lock = threading.Lock()
        # Touched only on the loop's thread:
        self._gate: asyncio.Semaphore | None = None
        self._next_start = 0.0
        self._last_turn = 0.0
        self._contexts: dict[bool, RunContext] = {}

    # --- callers' side (any thread) ---

    def run(self, specs: list[CheckSpec], *, allow_private: bool) -> list[CheckOutcome]:
        """Run the specs on the loop and wait for their outcomes (in the order of specs)."""
        if not specs:
            return []
        return self.submit(specs, allow_private=allow_private).result()

    def submit(
        self, specs: list[CheckSpec], *, allow_private: bool
    ) -> concurrent.futures.Future[list[CheckOutcome]]:
        """Hand the specs to the loop; the future holds their outcomes once all are in."""
        return asyncio.run_coroutine_threadsafe(self._run(specs, allow_private), self.start())

    def start(self) -> asyncio.AbstractEventLoop:
        """Start the loop's thread if it is not running yet; returns the loop."""
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="check-loop", daemon=True)
                self._thread.start()
        self._ready.wait()
        assert self._loop is not None
        return self._loop

    def close(self) -> None:
        """Stop the loop (tests; a worker process simply exits)."""
        loop = self._loop
        if loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._close_sessions(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(timeout=10)

    # --- the loop's thread ---

    def _serve(self) -> None:
        _load_checkers()
        # The objects alive now (Django, Celery, settings, the checkers) live as long as the
        # process: move them out of the collector's sight, so that a full collection walks
        # only what checks allocate instead of the whole process (100+ ms, every response
        # meanwhile timed that much slower; decision 0002). The batch runner held the
        # collector off per batch instead, which a loop that never rests cannot do.
        gc.freeze()
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._gate = asyncio.Semaphore(self.concurrency)
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    def _context(self, allow_private: bool) -> RunContext:
        ctx = self._contexts.get(allow_private)
        if ctx is None or ctx.http.closed:
            from apps.monitors.checkers.http import make_session

            ctx = RunContext(http=make_session(allow_private=allow_private, limit=self.concurrency))
            self._contexts[allow_private] = ctx
        return ctx

    def _turn(self) -> float:
        """Seconds until this check's start: the next free slot of the process-wide pace."""
        now = asyncio.get_running_loop().time()
        if now < self._last_turn:
            # The loop's clock went backwards, which a monotonic clock does only when replaced
            # (a test travelling in time): slots booked on the other clock would never come.
            self._next_start = now
        self._last_turn = now
        at = max(now, self._next_start)
        self._next_start = at + self.spacing
        return at - now

    async def _run(self, specs: list[CheckSpec], allow_private: bool) -> list[CheckOutcome]:
        ctx = self._context(allow_private)
        return await asyncio.gather(*(self._one(spec, ctx) for spec in specs))

    async def _one(self, spec: CheckSpec, ctx: RunContext) -> CheckOutcome:
        wait = self._turn()
        if wait > 0:
            await asyncio.sleep(wait)
        assert self._gate is not None
        async with self._gate:
            started = time.time()
            outcome = await check_one(spec, ctx)
        outcome.started_at = started
        return outcome

    async def _close_sessions(self) -> None:
        for ctx in self._contexts.values():
            await ctx.http.close()
        self._contexts.clear()


_shared: CheckLoop | None = None
_shared_lock = threading.Lock()


def shared_loop(factory: Callable[[], CheckLoop] = CheckLoop) -> CheckLoop:
    """This process's check loop (a forked child gets its own: threads do not survive a fork)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.pid != os.getpid():
            _shared = factory()
        return _shared
