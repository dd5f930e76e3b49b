#!/usr/bin/env python
"""Alerting end to end with real processes: a Celery worker checks, opens incidents, delivers.

Two figures (issue 5):

1. **latency**: from the check that crosses the failure threshold (its CheckResult's
   `checked_at`, taken when the check finished) to the webhook receiver getting the signed
   request. Each sample is its own organization (one HTTP monitor, failure threshold 1, one
   webhook channel), so no sample waits on another's grouping window. Samples run one after
   another; the script enqueues `run_checks` for the monitor, as the dispatcher would.
2. **storm**: N monitors (default 1,000) of one organization go down in the same round
   (batches of 200 enqueued at once, as dispatch does), critical, with two webhook channels. Per
   channel: webhook messages that reached the receiver, how many monitors they name (a grouped
   message lists its incidents in `extra.incidents`), and the time from the first failing
   check to the moment every monitor had been named; also when the last incident was written.

Each phase prints the CPU used (cores) by this script (with the local peers), the worker, the
database and Redis, and `others`: the rest of the machine's busy time, i.e. other people's
work on this shared machine (benchmarks/cpu.py). Distrust a figure taken with `others` high.

Everything runs on 127.0.0.1: a local target (503 for every monitor here), a local receiver,
one worker process (`celery worker --concurrency 2`, queues default + checks.default, no beat:
the script plays the dispatcher). The database and broker are whatever the environment says,
so the same script measures the embedded default and production-like settings:

    # embedded default: SQLite file + filesystem broker
    DATABASE_URL=sqlite:///var/bench_alerting.sqlite3 .venv/bin/python benchmarks/alerting.py
    # PostgreSQL + Redis
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/healthorch_alerts_bench \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/12 CACHE_URL=redis://127.0.0.1:6379/13 \\
    .venv/bin/python benchmarks/alerting.py [--samples 30] [--storm 1000]

The database named by DATABASE_URL must exist (`createdb -h 127.0.0.1 -U postgres
healthorch_alerts_bench`); it is migrated and its `bench-alert-*` organizations are
deleted and recreated on every run: never point it at data you keep.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("HEALTHORCH_ALLOW_PRIVATE_TARGETS", "1")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'bench_alerting.sqlite3'}")
(ROOT / "var").mkdir(exist_ok=True)

import django  # noqa: E402

django.setup()

from aiohttp import web  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from benchmarks.cpu import CpuWindow, pids_named, proc_cpu, session_cpu  # noqa: E402

PREFIX = "bench-alert"
SECRET = "bench-secret-0123456789abcdef0123"  # noqa: S105 (a local receiver)


class Peers:
    """The target (always 503) and the webhook receiver, on one event loop in a thread."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[tuple[float, dict]]] = {}
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.target_port = 0
        self.receiver_port = 0
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
            return web.Response(status=503, text="down")

        async def receive(request: web.Request) -> web.Response:
            arrived = time.time()
            body = json.loads(await request.read())
            self.arrivals.setdefault(request.path, []).append((arrived, body))
            return web.Response(text="ok")

        for handler, attr in ((target, "target_port"), (receive, "receiver_port")):
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", handler)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
            await site.start()
            setattr(self, attr, site._server.sockets[0].getsockname()[1])

    def wait_for(self, path: str, count: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.arrivals.get(path, [])) >= count:
                return True
            time.sleep(0.01)
        return False


def start_worker() -> subprocess.Popen:
    env = dict(os.environ, C_FORCE_ROOT="1", PYTHONUNBUFFERED="1")
    command = [
        sys.executable,
        "-m",
        "celery",
        "--quiet",
        "-A",
        "healthorch",
        "worker",
        "--queues=default,checks.default",
        "--concurrency=2",
        "--loglevel=WARNING",
        f"--hostname=bench-alerting-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    worker = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    return worker


def wait_worker_ready(peers: Peers, org_and_monitor, timeout: float = 60) -> None:
    """Warm-up sample: returns once the worker has delivered one notification."""
    org, monitor = org_and_monitor
    enqueue([monitor.pk])
    if not peers.wait_for(f"/{org.slug}", 1, timeout):
        raise SystemExit("the worker delivered nothing within a minute (is it running?)")


def enqueue(ids: list) -> None:
    from apps.monitors.tasks import run_checks

    for start in range(0, len(ids), 200):
        batch = [str(i) for i in ids[start : start + 200]]
        run_checks.apply_async(args=[batch, "default", None], queue="checks.default")


def make_org(slug: str, peers: Peers, *, plan: str = "pro", channels: tuple[str, ...] = ("",)):
    from apps.alerts.services.channels import channel_create
    from apps.plans.services import organization_change_plan
    from apps.tenants.models import Organization

    org = Organization.objects.create(name=slug, slug=slug)
    organization_change_plan(org=org, plan_code=plan, source="benchmark")
    for suffix in channels:
        channel_create(
            org=org,
            kind="webhook",
            name=f"bench hook{suffix}",
            config={
                "url": f"http://127.0.0.1:{peers.receiver_port}/{slug}{suffix}",
                "secret": SECRET,
            },
        )
    return org


def make_monitor(org, peers: Peers, name: str, *, critical: bool = False):
    from apps.monitors import services

    return services.monitor_create(
        org=org,
        data={
            "name": name,
            "kind": "http",
            "interval_seconds": 3600,
            "timeout_seconds": 5,
            "failure_threshold": 1,
            "critical": critical,
            "config": {"url": f"http://127.0.0.1:{peers.target_port}/{name}"},
        },
    )


def crossing_time(monitor) -> float:
    from apps.monitors.models import CheckResult

    result = CheckResult.objects.filter(monitor=monitor).order_by("checked_at").first()
    return result.checked_at.timestamp()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def named_monitors(body: dict) -> set[str]:
    names = {body["monitor"]} if body.get("monitor") else set()
    for item in body.get("extra", {}).get("incidents", []):
        if item.get("monitor"):
            names.add(item["monitor"])
    for item in body.get("extra", {}).get("earlier", []):
        if item.get("monitor"):
            names.add(item["monitor"])
    return names


def cpu_window(worker: subprocess.Popen) -> CpuWindow:
    me = os.getpid()
    sources = {"script": lambda: proc_cpu(me), "worker": lambda: session_cpu(worker.pid)}
    # PostgreSQL and Redis are ours only when the run uses them (else they are others' work).
    if connection.vendor == "postgresql":
        sources["postgres"] = lambda: sum(proc_cpu(p) for p in pids_named("postgres"))
    if os.environ.get("CELERY_BROKER_URL", "").startswith("redis"):
        sources["redis"] = lambda: sum(proc_cpu(p) for p in pids_named("redis-server"))
    return CpuWindow(sources).start()


def run_storm(peers: Peers, org, storm: list, worker: subprocess.Popen, timeout: float) -> None:
    from apps.incidents.models import Incident

    paths = [f"/{org.slug}/a", f"/{org.slug}/b"]
    wanted = {m.name for m in storm}
    cpu = cpu_window(worker)
    started = time.time()
    enqueue([m.pk for m in storm])
    complete: dict[str, float] = {}
    deadline = time.monotonic() + max(timeout, 60)
    while time.monotonic() < deadline and len(complete) < len(paths):
        for path in paths:
            arrivals = list(peers.arrivals.get(path, []))
            seen: set[str] = set()
            for _, body in arrivals:
                seen |= named_monitors(body)
            if path not in complete and wanted <= seen:
                complete[path] = max(at for at, _ in arrivals)
        time.sleep(0.05)
    cpu.stop()
    first_check = min(crossing_time(m) for m in storm[:50])
    written = Incident.objects.filter(organization=org).order_by("-created_at").first()
    written_at = written.created_at.timestamp() - first_check if written else float("nan")
    print(
        f"\nstorm: {len(wanted)} monitors down at once (first failing check "
        f"{first_check - started:.1f} s after enqueueing; last incident written "
        f"{written_at:.1f} s after that check)",
        flush=True,
    )
    for path in paths:
        arrivals = peers.arrivals.get(path, [])
        grouped = sum(1 for _, body in arrivals if body.get("extra", {}).get("grouped"))
        if path in complete:
            print(
                f"  channel {path}: {len(arrivals)} webhook messages ({grouped} grouped) naming "
                f"all {len(wanted)}; all named {complete[path] - first_check:.1f} s after the "
                f"first failing check (bar: grouped, within 10 s)",
                flush=True,
            )
        else:
            seen = set()
            for _, body in arrivals:
                seen |= named_monitors(body)
            print(f"  channel {path}: {len(seen)} of {len(wanted)} named in {len(arrivals)}")
    print(f"  cpu (cores): {cpu.line()}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--storm", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()

    from apps.plans.services import plans_ensure_defaults
    from apps.tenants.models import Organization

    print(
        f"database {connection.vendor} {connection.settings_dict['NAME']}, broker "
        f"{os.environ.get('CELERY_BROKER_URL', 'filesystem://')}",
        flush=True,
    )
    call_command("migrate", verbosity=0, interactive=False)
    plans_ensure_defaults()
    Organization.objects.filter(slug__startswith=PREFIX).delete()
    peers = Peers()

    samples = [
        (org := make_org(f"{PREFIX}-{i}", peers), make_monitor(org, peers, f"svc-{i}"))
        for i in range(args.samples + 1)
    ]
    storm_org = make_org(f"{PREFIX}-storm", peers, plan="enterprise", channels=("/a", "/b"))
    # Critical: every channel is told at once (the default route for critical incidents).
    storm = [make_monitor(storm_org, peers, f"storm-{i}", critical=True) for i in range(args.storm)]
    connection.close()  # the worker must not wait on a SQLite write lock we hold

    worker = start_worker()
    try:
        wait_worker_ready(peers, samples[0])
        cpu = cpu_window(worker)
        latencies = []
        for org, monitor in samples[1:]:
            enqueue([monitor.pk])
            if not peers.wait_for(f"/{org.slug}", 1, args.timeout):
                print(f"  {org.slug}: no notification within {args.timeout:g} s")
                continue
            arrived = peers.arrivals[f"/{org.slug}"][0][0]
            latencies.append(arrived - crossing_time(monitor))
        if latencies:
            print(
                f"\nlatency, crossing check -> webhook received ({len(latencies)} of "
                f"{args.samples}): median {statistics.median(latencies) * 1000:.0f} ms, "
                f"p95 {pct(latencies, 0.95) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
                f"(bar: p95 < 2,000 ms)",
                flush=True,
            )
        cpu.stop()
        print(f"  cpu (cores): {cpu.line()}", flush=True)

        run_storm(peers, storm_org, storm, worker, args.timeout)
    finally:
        os.kill(worker.pid, signal.SIGTERM)  # warm shutdown: the parent stops its pool
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
        Organization.objects.filter(slug__startswith=PREFIX).delete()


if __name__ == "__main__":
    main()
