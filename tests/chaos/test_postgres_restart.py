"""PostgreSQL restarted, then stopped for a while, under running web, worker and beat.

Promise: `/ready` answers 503 while the database is gone and 200 once it is back, without
any process being restarted; API calls in between answer 503 `database_unavailable` in the
one error shape (not a 500); workers and beat reconnect by themselves and checks resume; no
result or notification that was recorded before is lost, and every notification marked sent
reached the receiver (its idempotency key is there).

The test never touches the machine's PostgreSQL server: it makes a cluster of its own
(`initdb` in a temporary folder, `pg_ctl` on a free port of 127.0.0.1; run as the `postgres`
user when the test runs as root, since PostgreSQL refuses to run as root), migrates a fresh
database in it, and stops and restarts that cluster. Web, worker and beat run against it and
a redis-server of the test's own; the test reads their results with plain SQL.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests

from tests.chaos.conftest import Stack
from tests.monitors import targets
from tests.support import free_port, wait_for

pytestmark = pytest.mark.chaos

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DATABASE = "healthorch_chaospg"
STOP_SECONDS = 15
INTERVAL = 10
OK_MONITORS = 5


class PostgresCluster:
    """A throw-away PostgreSQL cluster of the test's own on 127.0.0.1."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="healthorch-chaospg-"))
        self.data = self.root / "data"
        self.as_postgres: list[str] = []
        if os.getuid() == 0:  # initdb and postgres refuse to run as root
            os.chown(self.root, pwd.getpwnam("postgres").pw_uid, -1)
            self.as_postgres = ["runuser", "-u", "postgres", "--"]

    def _run(self, *argv: str, timeout: float = 60) -> None:
        subprocess.run(
            [*self.as_postgres, *argv],
            check=True,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def _ctl(self, *argv: str) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", *argv)

    def init(self) -> None:
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N"
        )
        self.start()
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=40"
        )
        self._ctl("-o", options, "-l", str(self.root / "postgres.log"), "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")

    def restart(self) -> None:
        self._ctl("-m", "fast", "restart")

    def dsn(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def query(self, sql: str, *args) -> list[tuple]:
        with psycopg.connect(self.dsn(), connect_timeout=5) as conn:
            return conn.execute(sql, args).fetchall()

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._ctl("-m", "immediate", "stop")  # fails if it is already stopped
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL 15's binaries are not in {PG_BIN}")
    if os.getuid() == 0 and not shutil.which("runuser"):
        pytest.skip("running as root without runuser: cannot start PostgreSQL as postgres")
    made = PostgresCluster()
    try:
        made.init()
    except (subprocess.CalledProcessError, KeyError) as exc:
        made.destroy()
        detail = getattr(exc, "stderr", b"") or b""
        pytest.skip(f"cannot make a private PostgreSQL cluster: {exc} {detail.decode()[-300:]}")
    yield made
    made.destroy()


@pytest.fixture
def target():
    with targets.serve_http() as server:
        server.route("/ok")
        server.route("/down", status=500)
        server.route("/hook")
        yield server


SEED = """
from apps.alerts.services import channels
from apps.plans.services import organization_change_plan
from apps.tenants import services
from tests.factories import OrganizationFactory

org = OrganizationFactory()
organization_change_plan(org=org, plan_code="enterprise", source="test")
channels.channel_create(org=org, kind="webhook", name="ops", config={"url": %r})
print("SECRET=" + services.api_key_create(org=org, name="chaos", scopes=["read", "write"]).secret)
"""


class Poller(threading.Thread):
    """Asks `/ready` every 0.1 s and keeps (seconds since start, status) until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.seen: list[tuple[float, int | str]] = []
        self.started_at = time.monotonic()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                status: int | str = requests.get(self.url, timeout=5).status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            self.seen.append((time.monotonic() - self.started_at, status))
            time.sleep(0.1)

    def stop(self) -> list[tuple[float, int | str]]:
        self.done.set()
        self.join(10)
        return self.seen


def test_web_workers_and_beat_ride_out_a_postgres_restart_and_stop(
    cluster, redis_server, target, tmp_path
):
    stack = Stack(
        redis_server,
        tmp_path,
        DATABASE_URL=cluster.url(),
        ALERTS_GROUP_WINDOW_SECONDS="0",
        READY_CHECK_TIMEOUT_SECONDS="2",
    )
    try:
        _run_scenario(cluster, stack, target)
    finally:
        stack.stop_all()


def _run_scenario(cluster: PostgresCluster, stack: Stack, target) -> None:
    stack.manage("migrate", "-v0")
    out = stack.manage("shell", "-c", SEED % target.url("/hook"))
    secret = next(line for line in out.splitlines() if line.startswith("SECRET="))[7:]
    api = requests.Session()
    api.headers["X-API-Key"] = secret

    stack.web()
    stack.worker()
    stack.beat()

    def create(name: str, path: str) -> requests.Response:
        return api.post(
            stack.url("/api/v1/monitors/"),
            json={
                "name": name,
                "kind": "http",
                "config": {"url": target.url(path)},
                "interval_seconds": INTERVAL,
                "failure_threshold": 1,
            },
            timeout=30,
        )

    for i in range(OK_MONITORS):
        assert create(f"ok {i}", "/ok").status_code == 201
    assert create("down before", "/down").status_code == 201

    def results() -> int:
        return cluster.query("SELECT count(*) FROM monitors_checkresult")[0][0]

    def sent() -> list[str]:
        return [
            key
            for (key,) in cluster.query(
                "SELECT idempotency_key FROM alerts_notification WHERE status = 'sent'"
            )
        ]

    wait_for(lambda: results() >= OK_MONITORS + 1 and len(sent()) >= 1, 120, "checks, a send")

    # 1. A fast restart (pg_ctl restart -m fast).
    poller = Poller(stack.url("/ready"))
    poller.start()
    time.sleep(1)
    restart_began = time.monotonic() - poller.started_at
    cluster.restart()
    restart_took = time.monotonic() - poller.started_at - restart_began
    wait_for(lambda: poller.seen and poller.seen[-1][1] == 200, 60, "/ready 200 after restart")
    time.sleep(0.5)
    during_restart = poller.stop()
    ready_after_restart = [s for t, s in during_restart if t > restart_began]
    before_restart = results()
    wait_for(lambda: results() >= before_restart + OK_MONITORS, 60, "checks after the restart")

    # 2. A stop of STOP_SECONDS, with the API used meanwhile.
    kept_results = results()
    kept_max = cluster.query("SELECT max(id) FROM monitors_checkresult")[0][0]
    kept_sent = set(sent())
    poller = Poller(stack.url("/ready"))
    poller.start()
    cluster.stop()
    stopped_at = time.monotonic()
    api_during: list[tuple[int, str]] = []
    while time.monotonic() - stopped_at < STOP_SECONDS:
        for response in (
            api.get(stack.url("/api/v1/monitors/"), timeout=30),
            create("during the stop", "/down"),
        ):
            code = response.json().get("code", "") if response.status_code != 200 else ""
            api_during.append((response.status_code, code))
        time.sleep(1)
    stop_ready = [s for _, s in poller.seen]
    cluster.start()
    started_at = time.monotonic()
    wait_for(lambda: poller.seen[-1][1] == 200, 60, "/ready 200 after the start")
    ready_back_after = time.monotonic() - started_at
    poller.stop()

    # Checks resume, by themselves, and new work flows through to the receiver.
    wait_for(lambda: create("down after", "/down").status_code == 201, 30, "API writes back")
    wait_for(
        lambda: cluster.query("SELECT count(*) FROM monitors_checkresult WHERE id > %s", kept_max)[
            0
        ][0]
        >= OK_MONITORS + 2,
        90,
        "checks after the stop",
    )
    checks_back_after = time.monotonic() - started_at
    wait_for(lambda: len(sent()) >= len(kept_sent) + 1, 90, "the new incident's notification")
    sent_back_after = time.monotonic() - started_at

    # Nothing recorded before the stop is gone; every sent row reached the receiver.
    still = cluster.query("SELECT count(*) FROM monitors_checkresult WHERE id <= %s", kept_max)
    assert still[0][0] == kept_results
    received = {
        json.loads(seen.body)["extra"]["idempotency_key"]
        for seen in target.requests
        if seen.path == "/hook"
    }
    all_sent = set(sent())
    assert kept_sent <= all_sent
    assert all_sent <= received, all_sent - received
    statuses = dict(
        cluster.query("SELECT status, count(*) FROM alerts_notification GROUP BY status")
    )
    errors_503 = {code for status, code in api_during if status == 503}

    print(
        f"\nPostgreSQL `pg_ctl restart -m fast` ({restart_took:.1f} s): /ready answered "
        f"{_counts(ready_after_restart)} from the restart until 200; "
        f"stopped {STOP_SECONDS} s: /ready {_counts(stop_ready)}, API {_counts(api_during)}; "
        f"/ready 200 again {ready_back_after:.1f} s after the start, checks recorded again "
        f"{checks_back_after:.1f} s and a new incident's notification sent "
        f"{sent_back_after:.1f} s after it; results kept {kept_results}/{kept_results}; "
        f"notifications {statuses}, {len(all_sent)} sent, all {len(received)} keys received"
    )
    logs = {
        name: {
            "tracebacks": stack.log(name).count("Traceback"),
            "503 lines": stack.log(name).count("answered 503"),
            "task failures": stack.log(name).count("raised unexpected: OperationalError"),
            "beat errors": stack.log(name).count("Database gave error"),
        }
        for name in ("web", "worker", "beat")
    }
    print(f"logs: {logs}")
    assert set(stop_ready) - {200} == {503}, stop_ready  # 503 while down, never an error page
    assert {status for status, _ in api_during} == {503}, api_during
    assert errors_503 == {"database_unavailable"}
    assert set(ready_after_restart) <= {200, 503}
    for name in ("web", "worker", "beat"):
        stack.assert_alive(name)  # nothing was restarted by hand
    assert "Internal Server Error" not in stack.log("web")
    # One line per failure, no traceback.
    assert [logs[name]["tracebacks"] for name in ("web", "worker", "beat")] == [0, 0, 0]


def _counts(seen: list) -> dict[str, int]:
    """How often each answer came: {"503": 40, "200": 2}; (status, code) pairs as "503 code"."""
    return dict(Counter(" ".join(map(str, x)) if isinstance(x, tuple) else str(x) for x in seen))
