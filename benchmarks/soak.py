#!/usr/bin/env python
"""Load and soak: the whole product under a steady mixed load, and what it promises under it.

Seeds N organizations (enterprise plan, a write API key and a webhook channel each) and M
monitors spread over them: 90 % HTTP monitors of a local target (most answer 200; 3 % flap
between 200 and 503 every two minutes, 2 % always answer 503, so incidents open and resolve
and notifications flow all along) at intervals of 60, 120 and 300 s, and 10 % heartbeat
monitors. Then runs the product as it is deployed (DEBUG off), every process on 127.0.0.1 and
started by this script with the chaos tests' helpers (tests/chaos/conftest.py): gunicorn (2
workers x 4 threads, docker/gunicorn.conf.py), a check worker (queue checks.default) and a
worker for the rest (queue default: dispatch, incidents, notifications), each `--concurrency
2`, beat, on PostgreSQL and a redis-server of its own. locust (benchmarks/soak_locustfile.py)
drives heartbeat pings, metric ingestion, API reads and API writes at fixed rates for the
warm-up plus `--minutes`; a webhook receiver counts the deliveries by idempotency key.

Every few seconds it samples the resident memory (RSS) of every process, PostgreSQL's
connections to this database, and how long the oldest due check has waited in the schedule
table. At the end (after waiting up to `--drain` seconds for the outbox to deliver what was
created in the window) it checks the promises and prints a table of figures with the machine's
load (/proc/loadavg and the CPU used by others, benchmarks/cpu.py):

- no 5xx over the whole run (warm-up included), and at most 0.1 % of requests unanswered (a
  connection reset: each is printed with its error);
- p95 < 100 ms for each group of requests: API reads, API writes, metric ingestion, pings
  (measured from after the warm-up);
- every due check run: each slot of each seeded HTTP monitor that fell due in the window has
  its result within one interval; and the scheduler on time: at least 95 % of claims within
  2 s of their due time (`scheduler_lag_seconds`, read from the processes' own metric files);
- every notification created in the window reached the receiver (rows marked `sent` are among
  the keys received) and none is left pending, failed or dead;
- resident memory flat: each process grew < 10 % from the middle to the end of the window;
- no connection leak: PostgreSQL's connection count in the second half of the window never
  exceeds the first half's maximum by more than 2.

It exits 1 when a promise fails. `--ci` is the short version for CI (`make soak`): it keeps
the promises but loosens three bars (latency, scheduler lag, memory) because of what one
minute on a shared 2-core machine can show; it prints which and why.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/healthorch_soak \\
    .venv/bin/python benchmarks/soak.py [--orgs 50] [--monitors 10000] [--minutes 10]
        [--warmup 60] [--load 1.0] [--drain 120] [--ci]

The database named by DATABASE_URL is DROPPED and created again on every run (its name must
contain `soak`): never point it at data you keep. About 13 minutes with the defaults; `make
soak` (1 minute, 1,000 monitors, 10 organizations) about 2.5 minutes.
"""

# SQL here is built from constants; values always go as parameters.

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from bisect import bisect_left
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/healthorch_soak"
os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("HEALTHORCH_ALLOW_PRIVATE_TARGETS", "1")
# One key for this script and the stack (DEBUG off needs one): the webhook secrets this script
# encrypts are decrypted by the worker.
os.environ.setdefault("SECRET_KEY", "soak-only-" + "k" * 50)

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
from aiohttp import web  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from benchmarks.cpu import CpuWindow, pids_named, proc_cpu, session_cpu  # noqa: E402
from tests.chaos.conftest import RedisServer, Stack, publishing_to  # noqa: E402

INTERVALS = (60, 120, 300)
FLAP_PERIOD = 240  # a flapping target answers 503 for half of it, 200 for the other half
TARGET_DELAY = 0.01
SECRET = "soak-secret-0123456789abcdef0123"  # noqa: S105 (a local receiver)
# Requests per second per user of each locust class, and users per class, at --load 1.
USERS = {"ping": 10, "metrics": 4, "read": 8, "write": 2}
RATES = {"ping": 4.0, "metrics": 1.0, "read": 1.5, "write": 0.5}
GROUPS = {
    "pings": lambda name: name == "ping",
    "metric ingestion": lambda name: name == "POST /api/v1/metrics",
    "API reads": lambda name: name.startswith("GET /api/"),
    "API writes": lambda name: name.split()[0] in {"POST", "PATCH", "DELETE"}
    and "/monitors/" in name,
}


class Bars:
    """The promises' thresholds; `--ci` loosens two of them, with the reason printed."""

    def __init__(self, ci: bool) -> None:
        self.p95_ms = 100.0
        self.lag_bound_s = 2.0  # at least 95 % of claims within this (a bucket bound)
        self.unanswered = 0.001  # share of requests; each one is printed with its error
        self.rss_growth = 0.10
        self.connections_slack = 2
        self.looser: list[str] = []
        if ci:
            self.p95_ms = 3000.0
            self.lag_bound_s = 5.0
            self.rss_growth = 0.25
            self.looser = [
                "p95 < 3,000 ms instead of 100 ms: on a shared 2-core machine (load average "
                "8-19 while this was written, other processes using 1.5-1.8 of the 2 cores) the "
                "whole stack, PostgreSQL and the load generator share what is left and every "
                "latency stretches with it; one minute also gives a few dozen samples of the "
                "rarer requests, so their p95 is nearly their max. This bar catches a request "
                "that hangs (a lock held for seconds, a timeout), not a slow machine; the "
                "10-minute benchmark holds the 100 ms bar and records the machine's load.",
                "scheduler lag: 95 % of claims within 5 s instead of 2 s: dispatch runs every "
                "2 s, so even on an idle machine claims are 0-2 s late (p95 ~1.9 s) and any "
                "CPU starvation of beat or the worker tips the p95 over 2 s; the 5 s bound "
                "catches a dispatcher that missed ticks, not a busy machine.",
                "memory growth < 25 % instead of 10 %: over one minute the second half still "
                "includes warm-up (first checks, caches filling, gunicorn threads' first "
                "requests), so a leak shows only over the 10-minute run; 25 % still catches "
                "one that grows with the requests.",
            ]


# --- the database --------------------------------------------------------------------------


def recreate_database() -> str:
    url = urlsplit(os.environ["DATABASE_URL"])
    name = url.path.lstrip("/")
    if url.scheme not in {"postgres", "postgresql"} or "soak" not in name:
        raise SystemExit(
            f"DATABASE_URL must be a PostgreSQL database whose name contains `soak` (it is "
            f"dropped and created again); got {url.scheme}://.../{name}"
        )
    admin = url._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    call_command("migrate", verbosity=0, interactive=False)
    return name


def seed(args: argparse.Namespace, target: str, receiver: str) -> dict:
    """Organizations, keys, channels and monitors; bulk where the services would be one row
    at a time (monitors and their schedule rows: 10,000 monitor_create calls take minutes).
    Returns the locust plan and the seeded HTTP monitors' schedules (id -> first due, interval)."""
    from apps.alerts.services.channels import channel_create
    from apps.monitors.models import Monitor, MonitorKind, MonitorSchedule, ScheduleLane
    from apps.plans.services import organization_change_plan, plans_ensure_defaults
    from apps.tenants.models import Organization
    from apps.tenants.services import api_key_create

    plans_ensure_defaults()
    rng = random.Random(17)
    start = datetime.now(UTC) + timedelta(seconds=30)
    per_org = max(1, args.monitors // args.orgs)
    plan_orgs, phases = [], {}
    n = 0
    for o in range(args.orgs):
        org = Organization.objects.create(name=f"Soak {o}", slug=f"soak-{o}")
        organization_change_plan(org=org, plan_code="enterprise", source="benchmark")
        key = api_key_create(org=org, name="soak", scopes=["write"])
        channel_create(
            org=org,
            kind="webhook",
            name="soak hook",
            config={"url": f"{receiver}/hook/{org.slug}", "secret": SECRET},
        )
        monitors, schedules, tokens = [], [], []
        for i in range(per_org):
            n += 1
            if i % 10 == 9:
                token = uuid.uuid4()
                tokens.append(str(token))
                monitors.append(
                    Monitor(
                        organization=org,
                        name=f"job {i}",
                        slug=f"job-{i}",
                        kind=MonitorKind.HEARTBEAT,
                        config={"period_seconds": 3600, "grace_seconds": 600},
                        ping_token=token,
                    )
                )
                continue
            if n % 50 == 1:  # 2 %
                path, interval = f"/down/{n}", 60
            elif n % 33 == 2:  # 3 %
                path, interval = f"/flap/{n}", 60
            else:
                path, interval = f"/ok/{n}", INTERVALS[n % len(INTERVALS)]
            monitor = Monitor(
                organization=org,
                name=f"site {i}",
                slug=f"site-{i}",
                kind=MonitorKind.HTTP,
                config={"url": f"{target}{path}"},
                interval_seconds=interval,
                timeout_seconds=5,
                # The failing ones open an incident at their first failing check.
                failure_threshold=1 if not path.startswith("/ok/") else 2,
            )
            monitors.append(monitor)
            due = start + timedelta(seconds=rng.uniform(0, interval))
            schedules.append(
                MonitorSchedule(
                    monitor=monitor,
                    lane=ScheduleLane.CHECK,
                    next_check_at=due,
                    interval_seconds=interval,
                    regions=["default"],
                )
            )
        Monitor.objects.bulk_create(monitors, batch_size=1000)
        MonitorSchedule.objects.bulk_create(schedules, batch_size=1000)
        for s in schedules:
            phases[str(s.monitor_id)] = (s.next_check_at.timestamp(), s.interval_seconds)
        plan_orgs.append(
            {
                "slug": org.slug,
                "api_key": key.secret,
                "ping_tokens": tokens,
                "monitor_ids": [str(m.pk) for m in monitors[:200]],
                "pages": max(1, -(-len(monitors) // 50)),
            }
        )
    users = {k: max(1, round(v * args.load)) for k, v in USERS.items()}
    # Each heartbeat monitor takes 120 pings a minute (429 past that): stay at a quarter.
    heartbeats = sum(len(o["ping_tokens"]) for o in plan_orgs)
    users["ping"] = max(1, min(users["ping"], int(heartbeats * 0.5 / RATES["ping"])))
    plan = {
        "orgs": plan_orgs,
        "users": users,
        "rates": RATES,
        "write_url": f"{target}/ok/written",
    }
    return {"plan": plan, "phases": phases}


# --- the local peers: targets and the webhook receiver ---------------------------------------


class Peers:
    """The check targets and the webhook receiver, on one event loop in a thread."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.deliveries = 0
        self.answered = Counter()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.target_port = self.receiver_port = 0
        threading.Thread(target=self._run, daemon=True).start()
        if not self.ready.wait(10):
            raise SystemExit("local peers did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        async def target(request: web.Request) -> web.Response:
            kind, _, n = request.path.strip("/").partition("/")
            failing = kind == "down" or (
                kind == "flap" and int((time.time() + int(n) * 7) // (FLAP_PERIOD / 2)) % 2
            )
            self.answered["503" if failing else "200"] += 1
            if failing:
                return web.Response(status=503, text="down")
            await asyncio.sleep(TARGET_DELAY)
            return web.Response(text="ok")

        async def receive(request: web.Request) -> web.Response:
            body = json.loads(await request.read())
            self.deliveries += 1
            self.received[(body.get("extra") or {}).get("idempotency_key", "")] += 1
            return web.Response(text="ok")

        for handler, attr in ((target, "target_port"), (receive, "receiver_port")):
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", handler)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
            await site.start()
            setattr(self, attr, site._server.sockets[0].getsockname()[1])


# --- sampling --------------------------------------------------------------------------------


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    try:
        return sorted(int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    except OSError:
        return []


class Sampler:
    """Every `every` seconds: RSS per process, connections to the database, the oldest due
    check's age, the outbox's due count and the machine's load."""

    def __init__(self, roots: dict[str, int], dsn: str, database: str, every: float) -> None:
        self.roots = roots
        self.every = every
        self.database = database
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.samples: list[dict] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def processes(self) -> dict[str, int]:
        found = {}
        for name, pid in self.roots.items():
            found[name] = pid
            for i, child in enumerate(children(pid), 1):
                found[f"{name} child {i} (pid {child})"] = child
        return found

    def _loop(self) -> None:
        while not self.stop.is_set():
            self.take()
            self.stop.wait(self.every)

    def take(self) -> None:
        rss = {name: rss_kib(pid) for name, pid in self.processes().items()}
        row = self.conn.execute(
            "SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = %s),"
            " (SELECT extract(epoch FROM now() - min(next_check_at)) FROM monitors_monitorschedule"
            "  WHERE lane = 'check' AND next_check_at <= now()),"
            " (SELECT count(*) FROM alerts_notification WHERE status IN"
            "  ('pending', 'failed', 'sending') AND created_at <= now())",
            [self.database],
        ).fetchone()
        self.samples.append(
            {
                "t": time.time(),
                "rss": {k: v for k, v in rss.items() if v is not None},
                "connections": row[0],
                "oldest_due": float(row[1] or 0.0),
                "outbox": row[2],
                "load": Path("/proc/loadavg").read_text().split()[0],
            }
        )

    def start(self) -> Sampler:
        self.thread.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.conn.close()


# --- the figures -----------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def check_lags(phases: dict, t0: float, t1: float) -> dict:
    """Each slot (first due + k intervals) of each seeded HTTP monitor in [t0, t1]: the first
    result recorded within one interval after it, and how late."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT monitor_id::text, extract(epoch FROM checked_at) FROM monitors_checkresult"
            " WHERE checked_at >= %s ORDER BY monitor_id, checked_at",
            [datetime.fromtimestamp(t0, UTC)],
        )
        results: dict[str, list[float]] = {}
        for monitor_id, at in cursor.fetchall():
            results.setdefault(monitor_id, []).append(float(at))
    lags, missed = [], []
    for monitor_id, (first, interval) in phases.items():
        k = max(0, -int((first - t0) // interval))
        slot = first + k * interval
        times = results.get(monitor_id, [])
        while slot <= t1:
            if slot >= t0:
                i = bisect_left(times, slot)
                if i < len(times) and times[i] < slot + interval:
                    lags.append(times[i] - slot)
                else:
                    missed.append((monitor_id, slot))
            slot += interval
    return {"slots": len(lags) + len(missed), "lags": lags, "missed": missed}


def notifications(t1: float, peers: Peers) -> dict:
    from apps.alerts.models import Notification

    rows = list(
        Notification.objects.filter(created_at__lte=datetime.fromtimestamp(t1, UTC)).values_list(
            "idempotency_key", "status"
        )
    )
    statuses = Counter(status for _, status in rows)
    sent = [key for key, status in rows if status == "sent"]
    lost = [key for key in sent if key not in peers.received]
    duplicates = sum(n - 1 for n in peers.received.values() if n > 1)
    outstanding = sum(statuses[s] for s in ("pending", "failed", "sending", "dead"))
    return {
        "statuses": dict(statuses),
        "sent": len(sent),
        "lost": lost,
        "duplicates": duplicates,
        "outstanding": outstanding,
        "received": peers.deliveries,
    }


def engine_metrics(folder: Path) -> dict[tuple, float]:
    """The product's own counters and histograms, summed over every process (each writes its
    files to the one PROMETHEUS_MULTIPROC_DIR the stack shares here)."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(folder))
    values: dict[tuple, float] = {}
    for family in registry.collect():
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            values[key] = values.get(key, 0.0) + sample.value
    return values


def scheduler_lag(before: dict, after: dict, bound: float) -> tuple[int, float, float]:
    """From `scheduler_lag_seconds` (how late each due check was when the dispatcher claimed
    it) between two readings: claims, the share within `bound` (a bucket bound, so exact) and
    the p95 interpolated in its bucket."""
    buckets = []
    for (name, labels), value in after.items():
        if name == "scheduler_lag_seconds_bucket":
            le = float(dict(labels)["le"])
            buckets.append((le, value - before.get((name, labels), 0.0)))
    buckets.sort()
    if not buckets or not buckets[-1][1]:
        return 0, float("nan"), float("nan")
    total = buckets[-1][1]
    within = next(count for le, count in buckets if le == bound) / total
    lower, below = 0.0, 0.0
    for le, count in buckets:
        if count >= 0.95 * total:
            share = (0.95 * total - below) / max(count - below, 1e-9)
            return int(total), within, lower + share * (le - lower)
        lower, below = le, count
    return int(total), within, float("inf")


def counter(values: dict, name: str, **labels: str) -> float:
    return sum(
        v
        for (n, ls), v in values.items()
        if n == name and all(dict(ls).get(k) == w for k, w in labels.items())
    )


def window_median(samples: list[dict], key, start: float, end: float) -> float | None:
    values = [v for s in samples if start <= s["t"] <= end and (v := key(s)) is not None]
    return statistics.median(values) if values else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=50)
    parser.add_argument("--monitors", type=int, default=10_000)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds before the window")
    parser.add_argument("--load", type=float, default=1.0, help="scales the locust users")
    parser.add_argument("--drain", type=float, default=120.0, help="max seconds for the outbox")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--ci", action="store_true", help="the short CI run's looser bars")
    args = parser.parse_args()
    bars = Bars(args.ci)
    started = time.monotonic()
    database = recreate_database()
    peers = Peers()
    target = f"http://127.0.0.1:{peers.target_port}"
    receiver = f"http://127.0.0.1:{peers.receiver_port}"
    workdir = Path(tempfile.mkdtemp(prefix="healthorch-soak-"))
    redis_server = RedisServer(workdir)
    redis_server.start()
    with publishing_to(redis_server.url(0)):  # what the seed enqueues goes to the stack
        seeded = seed(args, target, receiver)
    print(
        f"seeded {args.orgs} organizations, {args.monitors} monitors in "
        f"{time.monotonic() - started:.0f} s (database {database})",
        flush=True,
    )
    connection.close()

    stack = Stack(
        redis_server,
        workdir,
        DEBUG="0",
        SECRET_KEY=os.environ["SECRET_KEY"],
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        CONN_MAX_AGE="60",
        # Production's visibility timeout, not the chaos tests' 30 s: nothing is killed here.
        CELERY_VISIBILITY_TIMEOUT_SECONDS="300",
    )
    metrics_dir = workdir / "metrics"
    metrics_dir.mkdir()
    stack.env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    locust = sampler = None
    out = workdir / "locust.json"
    try:
        stack.worker("worker-checks", queues="checks.default", concurrency=2)
        stack.worker("worker-default", queues="default", concurrency=2)
        stack.beat()
        stack.web(workers=2, threads=4, args=("--config", str(ROOT / "docker/gunicorn.conf.py")))
        print(f"stack up {time.monotonic() - started:.0f} s after start", flush=True)
        plan_file = workdir / "plan.json"
        plan_file.write_text(json.dumps(seeded["plan"]))
        users = seeded["plan"]["users"]
        run_seconds = args.warmup + args.minutes * 60
        log = open(workdir / "locust.log", "wb")  # noqa: SIM115 (the process owns it)
        locust = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(HERE / "soak_locustfile.py"),
                "--headless",
                "--host",
                stack.url(""),
                "--users",
                str(sum(users.values())),
                "--spawn-rate",
                str(sum(users.values())),
                "--run-time",
                f"{run_seconds:.0f}s",
                "--stop-timeout",
                "5",
                "--only-summary",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "SOAK_PLAN": str(plan_file),
                "SOAK_OUT": str(out),
                "SOAK_WARMUP": str(args.warmup),
            },
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        roots = {name: proc.pid for name, proc in stack.procs.items()}
        roots["redis"] = redis_server.proc.pid
        roots["locust"] = locust.pid
        sampler = Sampler(roots, os.environ["DATABASE_URL"], database, args.every).start()
        cpu = CpuWindow(
            {
                "product": lambda: sum(session_cpu(p.pid) for p in stack.procs.values()),
                "postgres": lambda: sum(proc_cpu(p) for p in pids_named("postgres")),
                "redis": lambda: proc_cpu(redis_server.proc.pid),
                "locust": lambda: proc_cpu(locust.pid),
                "script": lambda: proc_cpu(os.getpid()),
            }
        )
        time.sleep(args.warmup)
        t0 = time.time()
        metrics0 = engine_metrics(metrics_dir)
        cpu.start()
        print(f"warm-up done; measuring {args.minutes:g} min", flush=True)
        deadline = time.monotonic() + args.minutes * 60
        while time.monotonic() < deadline:
            for name in stack.procs:
                stack.assert_alive(name)
            time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
        t1 = time.time()
        metrics1 = engine_metrics(metrics_dir)
        cpu.stop()
        locust.wait(timeout=60)
        # The outbox delivers what the window created (checks go on: later incidents are not
        # counted); wait for it, bounded.
        from apps.alerts.models import Notification

        wait_until = time.monotonic() + args.drain
        while time.monotonic() < wait_until:
            pending = Notification.objects.filter(
                created_at__lte=datetime.fromtimestamp(t1, UTC),
                status__in=["pending", "failed", "sending"],
            ).count()
            if not pending and time.time() > t1 + 10:
                break
            time.sleep(2)
        sampler.finish()
        lags = check_lags(seeded["phases"], t0, t1)
        notes = notifications(t1, peers)
        connection.close()
    finally:
        if locust is not None and locust.poll() is None:
            locust.kill()
        if sampler is not None:
            sampler.stop.set()
        stack.stop_all()
        redis_server.stop()

    report = json.loads(out.read_text()) if out.exists() else {"requests": {}, "examples": []}
    failures: list[str] = []
    print(
        f"\n== soak: {args.orgs} organizations, {args.monitors} monitors, "
        f"{args.minutes:g} min measured after {args.warmup:g} s of warm-up =="
    )
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(
        f"machine: {os.cpu_count()} cores, load average now {' '.join(load)}; over the window "
        f"busy {cpu.used['machine']:.2f} cores, of which others {cpu.used['others']:.2f} "
        f"({cpu.line()})"
    )

    # Requests.
    requests = report["requests"]
    print("\nrequests (latencies after the warm-up; statuses over the whole run)")
    print(
        f"  {'name':<40} {'count':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}  statuses"
    )
    server_errors = unanswered = 0
    for name in sorted(requests):
        r = requests[name]
        codes = r["statuses"]
        server_errors += sum(n for code, n in codes.items() if int(code) >= 500)
        unanswered += codes.get("0", 0)
        print(
            f"  {name:<40} {r['count']:>7} {r['p50']:>8.1f} {r['p95']:>8.1f} {r['p99']:>8.1f} "
            f"{r['max']:>8.1f}  {dict(sorted(codes.items()))}"
        )
    total = sum(sum(r["statuses"].values()) for r in requests.values())
    print(
        f"  total {total} requests, {total / max(1.0, report.get('seconds', 1)):.0f}/s; "
        f"{server_errors} answered 5xx (bar: 0), {unanswered} not answered (status 0: the "
        f"connection failed; bar: <= {bars.unanswered:.1%} of requests)"
    )
    if server_errors or not requests:
        failures.append(f"{server_errors} requests answered 5xx" if requests else "no load ran")
    if unanswered > bars.unanswered * total:
        failures.append(f"{unanswered} requests unanswered (> {bars.unanswered:.1%})")
    for example in report["examples"][:20]:
        print(f"  5xx/unanswered: {example}")
    print(f"\nper group (bar: p95 < {bars.p95_ms:g} ms)")
    for group, member in GROUPS.items():
        values = []
        for name, r in requests.items():
            if member(name):
                values += r["latencies"]
        names = [n for n in requests if member(n)]
        if not names:
            continue
        # Without the raw latencies, a group's p95 is its worst member's (conservative).
        p95 = pct(values, 0.95) if values else max(requests[n]["p95"] for n in names)
        count = sum(requests[n]["count"] for n in names)
        ok = p95 < bars.p95_ms
        print(f"  {group:<20} {count:>7} requests, p95 {p95:.1f} ms  {'ok' if ok else 'FAILED'}")
        if not ok:
            failures.append(f"{group} p95 {p95:.1f} ms >= {bars.p95_ms:g} ms")

    # Checks.
    claims, within, lag_p95 = scheduler_lag(metrics0, metrics1, bars.lag_bound_s)
    executed = counter(metrics1, "monitor_checks_executed_total") - counter(
        metrics0, "monitor_checks_executed_total"
    )
    oldest = [s["oldest_due"] for s in sampler.samples if t0 <= s["t"] <= t1]
    print(
        f"\nchecks: {lags['slots']} due slots of seeded HTTP monitors in the window, "
        f"{len(lags['missed'])} without a result (bar: none); {executed:.0f} checks executed "
        f"in the window ({executed / (t1 - t0):.1f}/s, monitor_checks_executed_total)"
    )
    print(
        f"  scheduler lag (scheduler_lag_seconds: due -> claimed by the dispatcher, "
        f"{claims} claims): {within:.1%} within {bars.lag_bound_s:g} s, p95 ~{lag_p95:.2f} s "
        f"(interpolated in its bucket; bar: p95 < {bars.lag_bound_s:g} s, i.e. >= 95 % within)"
    )
    print(
        f"  due -> result recorded (the check's own time and the queue included): median "
        f"{pct(lags['lags'], 0.5):.2f} s, p95 {pct(lags['lags'], 0.95):.2f} s, max "
        f"{max(lags['lags'], default=float('nan')):.2f} s; oldest due check waiting in the "
        f"schedule table (sampled every {args.every:g} s): p95 {pct(oldest, 0.95):.1f} s, max "
        f"{max(oldest, default=0):.1f} s"
    )
    print(f"  target answered {dict(peers.answered)}")
    if lags["missed"]:
        failures.append(
            f"{len(lags['missed'])} due checks without a result, e.g. {lags['missed'][:3]}"
        )
    if not lags["slots"] or not claims or not within >= 0.95:
        failures.append(
            f"scheduler lag: {within:.1%} of {claims} claims within {bars.lag_bound_s:g} s (< 95 %)"
        )

    # Notifications.
    print(
        f"\nnotifications created in the window: {notes['statuses']}; {notes['sent']} marked "
        f"sent, {len(notes['lost'])} of them never received; {notes['received']} webhook "
        f"deliveries received in all, {notes['duplicates']} duplicate keys; "
        f"{notes['outstanding']} pending, failed or dead after the drain"
    )
    if notes["lost"] or notes["outstanding"]:
        failures.append(
            f"notifications: {len(notes['lost'])} lost, {notes['outstanding']} outstanding"
        )
    if not notes["sent"]:
        failures.append("no notification was sent: the failing targets opened no incident")

    # Memory.
    half = t0 + (t1 - t0) / 2
    span = max(2 * args.every, (t1 - t0) * 0.1)
    print(
        f"\nresident memory, MiB: median of the samples around the middle of the window "
        f"(+-{span / 2:.0f} s) and at its end (last {span:.0f} s) (bar: growth < "
        f"{bars.rss_growth:.0%})"
    )
    names = sorted({n for s in sampler.samples for n in s["rss"]})
    for name in names:
        mid = window_median(
            sampler.samples, lambda s, n=name: s["rss"].get(n), half - span / 2, half + span / 2
        )
        end = window_median(sampler.samples, lambda s, n=name: s["rss"].get(n), t1 - span, t1)
        first = window_median(sampler.samples, lambda s, n=name: s["rss"].get(n), t0, t0 + span)
        if mid is None or end is None:
            print(f"  {name:<45} not alive through the second half")
            continue
        growth = end / mid - 1
        ok = growth < bars.rss_growth or name in {"locust"}
        print(
            f"  {name:<45} start {first / 1024 if first else float('nan'):7.1f}  middle "
            f"{mid / 1024:7.1f}  end {end / 1024:7.1f}  {growth:+6.1%}  "
            f"{'ok' if ok else 'FAILED'}"
        )
        if not ok:
            failures.append(f"{name} RSS grew {growth:.1%} over the second half")

    # Connections.
    first_half = [s["connections"] for s in sampler.samples if t0 <= s["t"] < half]
    second_half = [s["connections"] for s in sampler.samples if half <= s["t"] <= t1]
    print(
        f"\nPostgreSQL connections to {database}: first half {min(first_half, default=0)}-"
        f"{max(first_half, default=0)}, second half {min(second_half, default=0)}-"
        f"{max(second_half, default=0)} (bar: second half's max <= first half's + "
        f"{bars.connections_slack})"
    )
    if max(second_half, default=0) > max(first_half, default=0) + bars.connections_slack:
        failures.append("PostgreSQL connections kept growing")
    loads = [float(s["load"]) for s in sampler.samples]
    print(f"load average (1 min) during the run: min {min(loads):.2f}, max {max(loads):.2f}")

    for reason in bars.looser:
        print(f"\nlooser bar in --ci: {reason}")
    print(f"\ntotal run {time.monotonic() - started:.0f} s")
    if failures:
        print(f"logs of every process: {workdir}")
        print("\nFAILED:\n  " + "\n  ".join(failures))
        return 1
    shutil.rmtree(workdir, ignore_errors=True)  # kept only when a promise failed
    print("\nall promises held")
    return 0


if __name__ == "__main__":
    sys.exit(main())
