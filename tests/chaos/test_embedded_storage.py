"""The embedded default's SQLite file locked by another process, or its disk full.

Promise: a write that cannot land answers 503 in the one error shape under /api/
(`database_busy`, `storage_full`; plain text `database busy` / `storage full` on the heartbeat
ping path), never a 500 or a traceback page; the log says so in one line per request; nothing
is half-written (a monitor and its schedule row land together or not at all); web, worker and
beat stay up and the product takes writes again by itself once the lock is released or the
space returns.

Both run the embedded default for real: web (gunicorn), a worker and beat on a fresh SQLite
file, the filesystem broker and the SQLite cache, all in one folder. The lock is another
process's `BEGIN EXCLUSIVE` on that file, held longer than the busy timeout (set to 2 s here
through `SQLITE_BUSY_TIMEOUT_SECONDS`, 20 s by default, to keep the scenario short). The full
disk is a real one: a 24 MiB tmpfs mounted in a private mount namespace (`unshare -m`, which
needs root or CAP_SYS_ADMIN; the scenario is skipped without it), every process entering that
namespace with `nsenter`, filled to the last byte by a file the test then deletes. SQLite's
own "database or disk is full" is also raised by a capped database (`PRAGMA max_page_count`)
in tests/core/test_database_faults.py.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.chaos.conftest import ROOT, Stack
from tests.monitors import targets
from tests.support import wait_for

pytestmark = pytest.mark.chaos

DB = "healthorch.sqlite3"
BUSY_TIMEOUT = 2
HOLD_SECONDS = 8
DISK_MIB = 24
FULL_SECONDS = 16

KEEP_OPEN = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
db.execute("SELECT count(*) FROM monitors_monitor").fetchall()
print("open", flush=True)
time.sleep(600)
"""

SEED = """
from apps.plans.services import organization_change_plan
from apps.tenants import services
from tests.factories import OrganizationFactory

org = OrganizationFactory()
organization_change_plan(org=org, plan_code="enterprise", source="test")
print("SECRET=" + services.api_key_create(org=org, name="chaos", scopes=["read", "write"]).secret)
"""


@pytest.fixture
def target():
    with targets.serve_http() as server:
        server.route("/ok")
        yield server


class Client:
    """The API as a tenant's script uses it, over real HTTP."""

    def __init__(self, stack: Stack, secret: str, target) -> None:
        self.stack = stack
        self.session = requests.Session()
        self.session.headers["X-API-Key"] = secret
        self.target = target
        self.made = 0

    def create(self, name: str) -> requests.Response:
        response = self.session.post(
            self.stack.url("/api/v1/monitors/"),
            json={
                "name": name,
                "kind": "http",
                "config": {"url": self.target.url("/ok")},
                "interval_seconds": 10,
            },
            timeout=60,
        )
        self.made += response.status_code == 201
        return response

    def heartbeat(self) -> str:
        response = self.session.post(
            self.stack.url("/api/v1/monitors/"),
            json={"name": "job", "kind": "heartbeat", "config": {"period_seconds": 60}},
            timeout=60,
        )
        assert response.status_code == 201, response.text
        self.made += 1
        return urlsplit(response.json()["ping_url"]).path


def _answer(response: requests.Response) -> str:
    """ "201", "503 database_busy", "503 database busy" (text): what a caller saw."""
    if response.status_code < 400:
        return str(response.status_code)
    if response.headers.get("Content-Type", "").startswith("application/json"):
        return f"{response.status_code} {response.json().get('code')}"
    return f"{response.status_code} {response.text.split(':')[0].strip()[:40]}"


def _start(stack: Stack, target) -> Client:
    stack.manage("migrate", "-v0")
    out = stack.manage("shell", "-c", SEED)
    secret = next(line for line in out.splitlines() if line.startswith("SECRET="))[7:]
    stack.web()
    stack.worker()
    stack.beat()
    client = Client(stack, secret, target)
    for i in range(3):
        assert client.create(f"before {i}").status_code == 201
    # Worker and beat up and working (checks recorded) before anything is broken.
    wait_for(lambda: _query(stack, RESULTS)[0] >= 3, 120, "the first checks")
    return client


QUERY = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
for sql in sys.argv[2:]:
    print(db.execute(sql).fetchone()[0])
"""
RESULTS = "SELECT count(*) FROM monitors_checkresult"


def _query(stack: Stack, *sql: str) -> list[int]:
    """Numbers read by a process that sees the stack's folder as the stack does (in its mount
    namespace, for the small disk)."""
    done = subprocess.run(
        [*stack.prefix, sys.executable, "-c", QUERY, str(stack.workdir / DB), *sql],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [int(line) for line in done.stdout.split()]


def _consistent(stack: Stack) -> tuple[int, int]:
    """(monitors, monitors whose schedule row is missing): a half-written create shows here."""
    monitors, orphans = _query(
        stack,
        "SELECT count(*) FROM monitors_monitor",
        "SELECT count(*) FROM monitors_monitor m WHERE m.kind = 'http' AND NOT EXISTS "
        "(SELECT 1 FROM monitors_monitorschedule s WHERE s.monitor_id = m.id)",
    )
    return monitors, orphans


def _log_summary(stack: Stack) -> dict[str, dict[str, int]]:
    summary = {}
    for name in ("web", "worker", "beat"):
        log = stack.log(name)
        summary[name] = {
            "tracebacks": log.count("Traceback"),
            "503 lines": log.count("answered 503"),
            "locked": log.count("database is locked"),
            "full": log.count("database or disk is full") + log.count("No space left"),
            "Internal Server Error": log.count("Internal Server Error"),
        }
    return summary


def test_a_locked_sqlite_file_answers_503_and_passes(tmp_path, target):
    stack = Stack(None, tmp_path, SQLITE_BUSY_TIMEOUT_SECONDS=str(BUSY_TIMEOUT))
    try:
        client = _start(stack, target)
        ping = client.heartbeat()
        db_path = tmp_path / DB

        holder = sqlite3.connect(db_path, isolation_level=None, timeout=30)
        holder.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
        held_at = time.monotonic()
        answers: Counter[str] = Counter()
        slowest = 0.0
        while time.monotonic() - held_at < HOLD_SECONDS - BUSY_TIMEOUT - 1:
            for call in (
                lambda: client.create("during the lock"),
                lambda: client.session.post(stack.url(ping), timeout=60),
                lambda: client.session.get(stack.url("/api/v1/monitors/"), timeout=60),
            ):
                began = time.monotonic()
                response = call()
                slowest = max(slowest, time.monotonic() - began)
                answers[_answer(response)] += 1
        holder.rollback()
        holder.close()
        released_at = time.monotonic()

        wait_for(lambda: client.create("after").status_code == 201, 30, "writes again")
        writes_back_after = time.monotonic() - released_at
        results_then = _query(stack, RESULTS)[0]
        wait_for(lambda: _query(stack, RESULTS)[0] >= results_then + 3, 60, "checks again")
        checks_back_after = time.monotonic() - released_at
        assert client.session.post(stack.url(ping), timeout=30).status_code == 200
        monitors, orphans = _consistent(stack)
        logs = _log_summary(stack)
        print(
            f"\nSQLite locked {HOLD_SECONDS} s (busy timeout {BUSY_TIMEOUT} s): answers "
            f"{dict(answers)}, slowest {slowest:.1f} s; writes back "
            f"{writes_back_after:.1f} s and checks recorded again {checks_back_after:.1f} s "
            f"after the release; monitors {monitors} "
            f"(created {client.made}), {orphans} without a schedule; logs {logs}"
        )
        # Writes refused cleanly, reads unaffected (WAL readers do not wait for the writer).
        assert answers["503 database_busy"] >= 1
        assert answers["503 database busy"] >= 1  # the ping, in plain text
        assert set(answers) <= {"200", "503 database_busy", "503 database busy"}, answers
        assert slowest < BUSY_TIMEOUT + 5
        assert (monitors, orphans) == (client.made, 0)
        assert logs["web"]["Internal Server Error"] == 0
        assert logs["web"]["tracebacks"] == 0
        for name in ("web", "worker", "beat"):
            stack.assert_alive(name)
    finally:
        stack.stop_all()


class PrivateDisk:
    """A tmpfs of `DISK_MIB` mounted at `path` in a mount namespace of its own, kept alive by a
    sleeping process; others enter it with `nsenter`, and this process reaches it through
    /proc/<pid>/root."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        self.proc = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                f'mount -t tmpfs -o size={DISK_MIB}m tmpfs "$0" && echo mounted && exec sleep 900',
                str(path),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline().strip()
        if line != "mounted":
            self.proc.wait(10)
            raise OSError(self.proc.stderr.read().strip() or "unshare failed")
        self.prefix = ("nsenter", f"--target={self.proc.pid}", "--mount", f"--wd={ROOT}", "--")
        self.seen = Path(f"/proc/{self.proc.pid}/root{path}")  # the tmpfs, from outside

    def fill(self) -> int:
        """Write a file until the disk refuses a byte more; its size."""
        written = 0
        chunk = b"\0" * 65536
        with open(self.seen / "filler", "wb", buffering=0) as f:
            while True:
                try:
                    written += f.write(chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    if len(chunk) == 1:
                        return written
                    chunk = chunk[: len(chunk) // 2]

    def free(self) -> None:
        (self.seen / "filler").unlink()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def disk(tmp_path) -> Iterator[PrivateDisk]:
    if not (shutil.which("unshare") and shutil.which("nsenter")):
        pytest.skip("util-linux's unshare and nsenter are needed for a private small disk")
    try:
        made = PrivateDisk(tmp_path / "disk")
    except OSError as exc:
        pytest.skip(f"cannot mount a small tmpfs in a private mount namespace here: {exc}")
    yield made
    made.close()


def test_a_full_disk_answers_503_writes_nothing_half_and_recovers(disk, target):
    stack = Stack(None, disk.path, prefix=disk.prefix)
    keeper = None
    try:
        client = _start(stack, target)
        ping = client.heartbeat()
        # Another connection kept open, as a busy deployment has one at most times: SQLite's
        # WAL and shared-memory files stay, so a write meets the full disk while appending to
        # the WAL (SQLITE_FULL) and not only when a connection opens (a "disk I/O error").
        keeper = subprocess.Popen(
            [*stack.prefix, sys.executable, "-c", KEEP_OPEN, str(stack.workdir / DB)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert keeper.stdout.readline().strip() == "open"
        filled = disk.fill()
        full_at = time.monotonic()

        answers: Counter[str] = Counter()
        pings: Counter[str] = Counter()
        phases = {}
        for phase, seconds in (("kept open", FULL_SECONDS / 2), ("all closed", FULL_SECONDS / 2)):
            began = time.monotonic()
            before = Counter(answers)
            while time.monotonic() - began < seconds:
                answers[_answer(client.create("while full"))] += 1
                pings[_answer(client.session.post(stack.url(ping), timeout=60))] += 1
                time.sleep(0.2)
            phases[phase] = dict(answers - before)
            if phase == "kept open":
                keeper.kill()
                keeper.wait()
        refused_for = time.monotonic() - full_at
        disk.free()
        freed_at = time.monotonic()

        wait_for(lambda: client.create("after").status_code == 201, 60, "writes again")
        writes_back_after = time.monotonic() - freed_at
        results_then = _query(stack, RESULTS)[0]
        wait_for(lambda: _query(stack, RESULTS)[0] >= results_then + 3, 60, "checks again")
        checks_back_after = time.monotonic() - freed_at
        assert client.session.post(stack.url(ping), timeout=30).status_code == 200
        monitors, orphans = _consistent(stack)
        logs = _log_summary(stack)
        print(
            f"\nDisk full ({DISK_MIB} MiB tmpfs, {filled / 2**20:.1f} MiB filler): creates "
            f"{phases}, pings {dict(pings)} over {refused_for:.1f} s; writes back "
            f"{writes_back_after:.1f} s and checks recorded again {checks_back_after:.1f} s "
            f"after the space returned; monitors {monitors} "
            f"(created {client.made}), {orphans} without a schedule; logs {logs}"
        )
        assert answers["503 storage_full"] >= 1, (answers, stack.log("web")[-4000:])
        assert set(answers) <= {"201", "503 storage_full"}, answers
        assert set(pings) <= {"200", "503 storage full"}, pings
        assert (monitors, orphans) == (client.made, 0)  # nothing half-written
        assert logs["web"]["Internal Server Error"] == 0
        # One line per failure, no traceback, and no torn broker message stopped the worker.
        assert [logs[name]["tracebacks"] for name in ("web", "worker", "beat")] == [0, 0, 0]
        assert "Unrecoverable error" not in stack.log("worker")
        for name in ("web", "worker", "beat"):
            stack.assert_alive(name)
    finally:
        stack.stop_all()
        if keeper is not None and keeper.poll() is None:
            keeper.kill()
            keeper.wait()
        os.sync()
