"""The check loop in a process of its own, beside the worker process that feeds it.

A check worker does two kinds of work for every check: the check itself (the HTTP client,
assertions: the check loop, apps.monitors.checkloop) and the database work around it (loading
the batch, recording and folding the results). In one process both need its one interpreter
lock, and a response that arrives while a task thread records a batch waits for the lock
before the loop can read it: the check is timed that much slower than the target answered
(decision 0027). With `HEALTHORCH_CHECK_PROCESS` on, each worker process starts one child
process that runs only the check loop; the worker's task threads load, send the specs over a
socket, and record the outcomes that come back. The child does no database work and holds no
connection; it reads settings only through the specs it is sent.

Failure handling:
- The child is started on first use and again after it is lost (it exited, was killed, or
  stopped answering). A batch whose child was lost is run once more on a new child (a check
  repeated is harmless; one skipped is not), then the task fails and the broker's redelivery
  takes over.
- A batch gets its longest check's timeout plus a margin to come back; past that the child
  is taken to be stuck, killed, and the batch goes to a new one.
- The child exits when its socket closes: a worker that exits, or is killed, takes its child
  with it.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextlib
import itertools
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path

from apps.monitors.checkers.base import CheckOutcome, CheckSpec

logger = logging.getLogger(__name__)

# Past the longest check's own timeout (plus the loop's 2 s grace), how long a batch may take
# to come back before its child is taken to be stuck: the batch may queue behind the others
# of the process (at most the task threads' batches, paced at thousands of starts a second).
BATCH_MARGIN_SECONDS = 30.0
# How long a new child may take to load the checkers and answer.
START_TIMEOUT_SECONDS = 60.0
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# How much lower the task threads' CPU priority is than the check process's (0: the same).
RECORDING_NICENESS = 10


class CheckProcessLost(RuntimeError):
    """The child running the checks exited or stopped answering, twice for one batch."""


class _Child:
    """One child process and the batches sent to it that have not come back yet."""

    def __init__(self) -> None:
        parent_end, child_end = socket.socketpair()
        env = dict(os.environ)
        env.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")
        # The child imports the project as this process does, wherever it was started from.
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "apps.monitors.checkproc", str(child_end.fileno())],
                pass_fds=(child_end.fileno(),),
                env=env,
                close_fds=True,
            )
        finally:
            child_end.close()
        self.conn = Connection(parent_end.detach())
        self.pending: dict[int, concurrent.futures.Future[list[CheckOutcome]]] = {}
        self.lock = threading.Lock()  # guards pending, sends and `lost`
        self.lost = False
        self.ready = concurrent.futures.Future()
        self.reader = threading.Thread(target=self._read, name="check-process-reader", daemon=True)
        self.reader.start()

    def send(self, batch_id: int, specs: list[CheckSpec], allow_private: bool):
        future: concurrent.futures.Future[list[CheckOutcome]] = concurrent.futures.Future()
        with self.lock:
            if self.lost:
                future.set_exception(CheckProcessLost("the check process is gone"))
                return future
            self.pending[batch_id] = future
            try:
                self.conn.send((batch_id, specs, allow_private))
            except OSError as exc:
                self.pending.pop(batch_id, None)
                future.set_exception(CheckProcessLost(f"the check process is gone: {exc}"))
        return future

    def _read(self) -> None:
        try:
            while True:
                message = self.conn.recv()
                if message == "ready":
                    self.ready.set_result(True)
                    continue
                batch_id, outcomes, error = message
                with self.lock:
                    future = self.pending.pop(batch_id, None)
                if future is None:
                    continue
                if error is None:
                    future.set_result(outcomes)
                else:
                    future.set_exception(CheckProcessLost(f"the check process failed: {error}"))
        except (EOFError, OSError):
            pass
        self._fail_all("the check process exited")

    def _fail_all(self, reason: str) -> None:
        with self.lock:
            self.lost = True
            pending, self.pending = self.pending, {}
        if not self.ready.done():
            self.ready.set_exception(CheckProcessLost(reason))
        for future in pending.values():
            if not future.done():
                future.set_exception(CheckProcessLost(reason))

    def stop(self, *, kill: bool = False) -> None:
        """Close the socket (the child exits on it); kill it if asked or if it lingers."""
        with self.lock:
            self.lost = True
        with contextlib.suppress(OSError):
            self.conn.close()
        if kill:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.reader.join(timeout=5)
        self._fail_all("the check process was stopped")


class ProcessCheckLoop:
    """The check loop's interface (`run`), served by a child process."""

    def __init__(
        self,
        *,
        batch_margin: float = BATCH_MARGIN_SECONDS,
        start_timeout: float = START_TIMEOUT_SECONDS,
    ) -> None:
        self.pid = os.getpid()
        self.batch_margin = batch_margin
        self.start_timeout = start_timeout
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._ids = itertools.count(1)
        # Children are started from one thread of their own, made before any caller lowers
        # its priority (below): a child inherits the niceness of the thread that starts it.
        self._spawner = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="check-spawn")
        self._lowered = threading.local()

    @property
    def child_pid(self) -> int | None:
        child = self._child
        return child.proc.pid if child is not None and not child.lost else None

    def start(self) -> int:
        """Start the child now if it is not running (a worker may start it before its first
        batch instead of on it); returns its pid."""
        return self._current().proc.pid

    def run(self, specs: list[CheckSpec], *, allow_private: bool) -> list[CheckOutcome]:
        """Run the specs in the child and wait for their outcomes (in the order of specs)."""
        if not specs:
            return []
        deadline = max(spec.timeout for spec in specs) + 2 + self.batch_margin
        for attempt in (1, 2):
            child = self._current()
            self._lower_caller()
            future = child.send(next(self._ids), specs, allow_private)
            try:
                return future.result(timeout=deadline)
            except CheckProcessLost:
                if attempt == 2:
                    raise
                logger.warning("check process lost; the batch runs again on a new one")
            except concurrent.futures.TimeoutError:
                logger.error(
                    "check process did not answer in time; restarting it",
                    extra={"pid": child.proc.pid, "seconds": deadline},
                )
                self._replace(child)
                if attempt == 2:
                    raise CheckProcessLost("the check process did not answer in time") from None
        raise AssertionError("unreachable")

    def _current(self) -> _Child:
        with self._lock:
            child = self._child
            if child is None or child.lost:
                if child is not None:
                    child.stop(kill=True)
                child = self._spawner.submit(_Child).result()
                self._child = child
        try:
            child.ready.result(timeout=self.start_timeout)
        except concurrent.futures.TimeoutError:
            self._replace(child)
            raise CheckProcessLost("the check process did not start in time") from None
        return child

    def _lower_caller(self) -> None:
        """Lower the calling thread's CPU priority, once (Linux schedules threads on their
        own niceness): the task threads load and record, work with slack, while the check
        process times responses; on a host short of CPU the kernel then runs the check
        process first and a response is read when it arrives (decision 0027)."""
        if RECORDING_NICENESS and not getattr(self._lowered, "done", False):
            self._lowered.done = True
            with contextlib.suppress(OSError, AttributeError):
                tid = threading.get_native_id()
                now = os.getpriority(os.PRIO_PROCESS, tid)
                os.setpriority(os.PRIO_PROCESS, tid, min(19, now + RECORDING_NICENESS))

    def _replace(self, child: _Child) -> None:
        with self._lock:
            if self._child is child:
                self._child = None
        child.stop(kill=True)

    def close(self) -> None:
        with self._lock:
            child, self._child = self._child, None
        if child is not None:
            child.stop()


_shared: ProcessCheckLoop | None = None
_shared_lock = threading.Lock()


def shared_process_loop() -> ProcessCheckLoop:
    """This process's check process (a forked child of the worker gets its own)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.pid != os.getpid():
            _shared = ProcessCheckLoop()
            atexit.register(_shared.close)
        return _shared


# --- The child -----------------------------------------------------------------------------


def _serve(fd: int) -> None:
    """Run batches on a check loop until the socket closes; each batch is answered as soon
    as it is done, from a sender thread (the loop never waits on the socket)."""
    import django

    django.setup()
    from apps.monitors.checkloop import CheckLoop

    conn = Connection(fd)
    loop = CheckLoop()
    loop.start()
    outbox: queue.SimpleQueue = queue.SimpleQueue()

    def sender() -> None:
        while True:
            message = outbox.get()
            try:
                conn.send(message)
            except OSError:
                os._exit(0)

    threading.Thread(target=sender, name="check-process-sender", daemon=True).start()

    def answer(batch_id: int, future: concurrent.futures.Future) -> None:
        try:
            outbox.put((batch_id, future.result(), None))
        except Exception as exc:  # the parent hears every failure
            outbox.put((batch_id, None, f"{type(exc).__name__}: {exc}"))

    outbox.put("ready")
    while True:
        try:
            batch_id, specs, allow_private = conn.recv()
        except (EOFError, OSError):
            break
        future = loop.submit(specs, allow_private=allow_private)
        future.add_done_callback(lambda f, batch_id=batch_id: answer(batch_id, f))
    # The worker is gone: nobody waits for the checks in flight.
    os._exit(0)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
