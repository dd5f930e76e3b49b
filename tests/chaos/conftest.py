"""Real processes to break: our own redis-server, gunicorn, Celery workers and beat.

Every process here is started by the test on 127.0.0.1 and killed by it (never the machine's
shared PostgreSQL or Redis). They share the test database (the tests are transactional, so
what one process commits the others see) and a redis-server of their own, started on a free
port without persistence, so stopping it loses what it held, as a crashed Redis would.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
import requests
from django.db import connection

from tests.support import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
REDIS_SERVER = shutil.which("redis-server")
VISIBILITY_TIMEOUT = 30  # the settings' minimum: redelivery in ~35 s instead of ~95 s


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "chaos: kills or stops real processes (make chaos runs only these)"
    )


def pytest_collection_modifyitems(config, items):
    """The scenarios take about eight minutes together: `make chaos` (pytest -m chaos) runs
    them, CI runs both commands, and `make test` leaves them out to stay quick."""
    if "chaos" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="a chaos scenario: run with `make chaos` (pytest -m chaos)")
    for item in items:
        if item.get_closest_marker("chaos") is not None:
            item.add_marker(skip)


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen | None = None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        wait_for(lambda: self._pings(client), 20, "redis-server")

    @staticmethod
    def _pings(client: redis.Redis) -> bool:
        try:
            return client.ping()
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(port=self.port, db=db, socket_connect_timeout=1)


@pytest.fixture
def redis_server(tmp_path) -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def database_url() -> str:
    """The test database, as the other processes must reach it."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{s['NAME']}"
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


class Stack:
    """Named processes of one product instance, each in its own process group."""

    def __init__(
        self,
        redis_server: RedisServer | None,
        workdir: Path,
        *,
        prefix: tuple[str, ...] = (),
        **env: str,
    ) -> None:
        """With a redis server: the test database, that server as broker and cache. Without
        one: the embedded default, a SQLite file, the filesystem broker and the SQLite cache,
        all in `workdir`. `prefix` runs each process under a wrapper (`nsenter ...`)."""
        self.redis = redis_server
        self.workdir = workdir
        self.prefix = list(prefix)
        self.procs: dict[str, subprocess.Popen] = {}
        self.web_port = free_port()
        servers = (
            {
                "DATABASE_URL": database_url(),
                "CELERY_BROKER_URL": redis_server.url(0),
                "CACHE_URL": redis_server.url(1),
                "CELERY_VISIBILITY_TIMEOUT_SECONDS": str(VISIBILITY_TIMEOUT),
            }
            if redis_server is not None
            else {}
        )
        self.env = {
            **os.environ,
            "DEBUG": "1",
            "LOG_LEVEL": "WARNING",
            **servers,
            "HEALTHORCH_VAR_DIR": str(workdir),
            "HEALTHORCH_ALLOW_PRIVATE_TARGETS": "1",
            "C_FORCE_ROOT": "1",
            **env,
        }
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if redis_server is None:
            for name in ("DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL"):
                self.env.pop(name, None)

    def manage(self, *argv: str, timeout: float = 180) -> str:
        """`manage.py ...` with the stack's environment (and prefix); its output."""
        done = subprocess.run(
            [*self.prefix, sys.executable, "manage.py", *argv],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def _start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 (the process owns it)
        proc = subprocess.Popen(
            [*self.prefix, *argv],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def worker(
        self,
        name: str = "worker",
        queues: str = "default,checks.default",
        pool: str = "prefork",
        concurrency: int = 1,
    ) -> None:
        self._start(
            name,
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "healthorch",
                "worker",
                "-Q",
                queues,
                f"--pool={pool}",
                f"--concurrency={concurrency}",
                "--loglevel=WARNING",
                f"--hostname={name}-{time.monotonic_ns()}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
        )

    def beat(self) -> None:
        self._start(
            "beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "healthorch",
                "beat",
                "--loglevel=WARNING",
                "--schedule",
                str(self.workdir / "beat-schedule"),
            ],
        )

    def web(self, workers: int = 1, threads: int = 4, args: tuple[str, ...] = ()) -> None:
        self._start(
            "web",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "healthorch.wsgi:application",
                *args,
                "--bind",
                f"127.0.0.1:{self.web_port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--no-control-socket",
            ],
        )

        def up() -> bool:
            self.assert_alive("web")
            try:
                return requests.get(self.url("/live"), timeout=5).ok
            except requests.RequestException:
                return False

        wait_for(up, 60, "gunicorn")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.web_port}{path}"

    def assert_alive(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited {proc.returncode}:\n{self.log(name)[-3000:]}")

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """kill -9 the whole process (group: a worker's pool processes too)."""
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def children(self, name: str) -> list[int]:
        # Every thread's children: a check process is started by the task thread that needs
        # it first, not by the main thread.
        pid = self.procs[name].pid
        kids: list[int] = []
        for path in Path(f"/proc/{pid}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                kids += [int(p) for p in path.read_text().split()]
        return kids

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.kill(name)


@pytest.fixture
def stack_factory(transactional_db, tmp_path):
    made: list[Stack] = []

    def make(redis_server: RedisServer, **env: str) -> Stack:
        stack = Stack(redis_server, tmp_path, **env)
        made.append(stack)
        return stack

    yield make
    for stack in made:  # before the test database is flushed
        stack.stop_all()


@contextmanager
def publishing_to(broker_url: str) -> Iterator[None]:
    """Tasks this test process enqueues (an outbox on commit) go to the stack's broker."""
    from healthorch.celery import app

    # The write URL: Celery prefers a CELERY_BROKER_URL environment variable to broker_url.
    saved = (app.conf.get("broker_write_url"), app.conf.broker_transport_options)

    def reset_pool() -> None:
        if app._pool is not None:
            app._pool.force_close_all()
        app._pool = None
        app.amqp._producer_pool = None

    reset_pool()
    app.conf.broker_write_url = broker_url
    app.conf.broker_transport_options = {"visibility_timeout": VISIBILITY_TIMEOUT}
    try:
        yield
    finally:
        reset_pool()
        app.conf.broker_write_url, app.conf.broker_transport_options = saved


def http_monitors(plan: str, url: str, count: int, *, name: str = "web", **fields) -> list:
    """A new organization on `plan` with `count` HTTP monitors of `url`, made through the
    monitors service (schedules included)."""
    from apps.monitors import services as monitor_services
    from apps.plans.services import organization_change_plan
    from tests.factories import OrganizationFactory

    org = OrganizationFactory()
    organization_change_plan(org=org, plan_code=plan, source="test")
    return [
        monitor_services.monitor_create(
            org=org,
            data={"name": f"{name} {i}", "kind": "http", "config": {"url": url}, **fields},
        )
        for i in range(count)
    ]
