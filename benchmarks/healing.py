#!/usr/bin/env python
"""Healing: the decision engine's cost, and incident open -> remediation request, end to end.

Two figures (issue 8):

1. **decision**: for N open incidents (one monitor each, a webhook policy per monitor), the
   time to evaluate one incident: `apps.healing.services.evaluate`, i.e. the plan's
   entitlements (cached), the attempt history query and the rule table. Also the pure rule
   table alone, and the anomaly path over a week of 10-minute latency results (1,000 points)
   read from the database. Median and p95 per incident. Bar: median < 5 ms.
2. **latency**: from the incident opening (its `opened_at`, taken in the transaction of the
   check that crossed the threshold) to the customer's restart hook receiving the signed
   request, through a real Celery worker: check task -> state machine -> healing listener ->
   commit -> `healing_execute` task -> webhook. Each sample is its own organization (Pro plan,
   one HTTP monitor against a local 503 target, failure threshold 1, an automatic policy), run
   one after another. Bar: p95 < 2 s.

Everything runs on 127.0.0.1. The database and broker are whatever the environment says:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/healthorch_bench_healing \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/14 CACHE_URL=redis://127.0.0.1:6379/15 \\
    .venv/bin/python benchmarks/healing.py [--incidents 200] [--samples 30]

The database named by DATABASE_URL is migrated and its `bench-heal-*` organizations are
deleted and recreated on every run: never point it at data you keep.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("HEALTHORCH_ALLOW_PRIVATE_TARGETS", "1")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'bench_healing.sqlite3'}")
(ROOT / "var").mkdir(exist_ok=True)

import django  # noqa: E402

django.setup()

from aiohttp import web  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

PREFIX = "bench-heal"
SECRET = "bench-restart-secret-0123456789abcdef"  # noqa: S105 (a local receiver)


class Peers:
    """The target (always 503) and the restart hook, on one event loop in a thread."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.target_port = 0
        self.hook_port = 0
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

        async def hook(request: web.Request) -> web.Response:
            self.arrivals.setdefault(request.path, time.time())
            await request.read()
            return web.Response(text="restarted")

        for handler, attr in ((target, "target_port"), (hook, "hook_port")):
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", handler)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            setattr(self, attr, site._server.sockets[0].getsockname()[1])

    def wait_for(self, path: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path in self.arrivals:
                return True
            time.sleep(0.005)
        return False


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def make_org(slug: str, peers: Peers, *, plan: str = "pro", monitors: int = 1, auto: bool = True):
    from apps.healing.services import policy_create
    from apps.monitors import services
    from apps.plans.services import organization_change_plan
    from apps.tenants.models import Organization

    org = Organization.objects.create(name=slug, slug=slug)
    organization_change_plan(org=org, plan_code=plan, source="benchmark")
    made = []
    for i in range(monitors):
        monitor = services.monitor_create(
            org=org,
            data={
                "name": f"svc-{i}",
                "kind": "http",
                "interval_seconds": 3600,
                "timeout_seconds": 5,
                "failure_threshold": 1,
                "config": {"url": f"http://127.0.0.1:{peers.target_port}/{slug}/{i}"},
            },
        )
        policy_create(
            org=org,
            data={
                "name": f"restart {i}",
                "monitor": monitor,
                "action_kind": "webhook",
                "action_config": {
                    "url": f"http://127.0.0.1:{peers.hook_port}/{slug}/{i}",
                    "secret": SECRET,
                },
                "auto": auto,
                "use_anomaly": plan == "business",  # enterprise: the rules path alone
                "verify_after_seconds": 3600,
            },
        )
        made.append(monitor)
    return org, made


def bench_decisions(peers: Peers, n: int) -> None:
    from apps.healing import engine, selectors, services
    from apps.healing.services.decisions import policy_view
    from apps.incidents.models import Incident
    from apps.monitors.checkers.base import CheckOutcome, ErrorClass, Outcome
    from apps.monitors.engine import results_record
    from apps.monitors.models import CheckResult

    org, monitors = make_org(f"{PREFIX}-decide", peers, plan="enterprise", monitors=n, auto=False)
    outcome = CheckOutcome(Outcome.DOWN, status_code=503, error_class=ErrorClass.STATUS)
    results_record(monitors=monitors, outcomes=[outcome] * n, region="default")
    incidents = list(
        Incident.objects.filter(organization=org).select_related("monitor", "organization")
    )
    now = timezone.now()
    full, pure = [], []
    for incident in incidents:
        policy = selectors.policy_for(monitor=incident.monitor)
        started = time.perf_counter()
        verdict, _ = services.evaluate(incident=incident, policy=policy, now=now)
        full.append(time.perf_counter() - started)
        view = policy_view(policy)
        started = time.perf_counter()
        engine.decide(
            facts=engine.Facts.of(incident),
            policy=view,
            history=engine.History(),
            now=now,
            auto_allowed=True,
            anomaly_allowed=False,
        )
        pure.append(time.perf_counter() - started)
    print(
        f"decision, rules path, per incident ({len(full)} incidents, PostgreSQL reads "
        f"included): median {statistics.median(full) * 1000:.2f} ms, p95 "
        f"{pct(full, 0.95) * 1000:.2f} ms (bar: median < 5 ms); the rule table alone: "
        f"median {statistics.median(pure) * 1e6:.1f} us",
        flush=True,
    )

    # The anomaly path: a week of 10-minute latency results for a few monitors.
    ml_org, ml_monitors = make_org(f"{PREFIX}-anomaly", peers, plan="business", monitors=20)
    rows = []
    start = now - timedelta(days=7)
    for monitor in ml_monitors:
        for i in range(7 * 144):
            rows.append(
                CheckResult(
                    monitor_id=monitor.pk,
                    organization_id=ml_org.pk,
                    checked_at=start + timedelta(minutes=10 * i),
                    outcome="up",
                    response_time_ms=100 + (i % 144) / 3,
                )
            )
    CheckResult.objects.bulk_create(rows, batch_size=2000)
    results_record(monitors=ml_monitors, outcomes=[outcome] * len(ml_monitors), region="default")
    timings = []
    for incident in Incident.objects.filter(organization=ml_org).select_related(
        "monitor", "organization"
    ):
        policy = selectors.policy_for(monitor=incident.monitor)
        started = time.perf_counter()
        verdict, _ = services.evaluate(incident=incident, policy=policy, now=timezone.now())
        timings.append(time.perf_counter() - started)
    print(
        f"decision, anomaly path ({len(timings)} incidents, ~1,000 latency points each read "
        f"and scored): median {statistics.median(timings) * 1000:.1f} ms, p95 "
        f"{pct(timings, 0.95) * 1000:.1f} ms; last verdict: {verdict.path} - "
        f"{verdict.explanation[:90]}",
        flush=True,
    )


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
        f"--hostname=bench-healing-{os.getpid()}@%h",
        "--without-gossip",
        "--without-mingle",
    ]
    return subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)


def enqueue(monitor) -> None:
    from apps.monitors.tasks import run_checks

    run_checks.apply_async(args=[[str(monitor.pk)], "default", None], queue="checks.default")


def bench_latency(peers: Peers, samples: int, timeout: float) -> None:
    from apps.incidents.models import Incident

    orgs = [make_org(f"{PREFIX}-{i}", peers) for i in range(samples + 1)]
    connection.close()  # the worker must not wait on a SQLite write lock we hold
    worker = start_worker()
    try:
        (warm, [warm_monitor]) = orgs[0]
        enqueue(warm_monitor)
        if not peers.wait_for(f"/{warm.slug}/0", 60):
            raise SystemExit("the worker called no hook within a minute (is it running?)")
        latencies = []
        for org, [monitor] in orgs[1:]:
            enqueue(monitor)
            path = f"/{org.slug}/0"
            if not peers.wait_for(path, timeout):
                print(f"  {org.slug}: no remediation request within {timeout:g} s")
                continue
            opened = Incident.objects.get(monitor=monitor).opened_at.timestamp()
            latencies.append(peers.arrivals[path] - opened)
        if latencies:
            print(
                f"latency, incident open -> restart hook received ({len(latencies)} of "
                f"{samples}, real worker): median {statistics.median(latencies) * 1000:.0f} ms, "
                f"p95 {pct(latencies, 0.95) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
                f"(bar: p95 < 2,000 ms)",
                flush=True,
            )
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=200)
    parser.add_argument("--samples", type=int, default=30)
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
    try:
        bench_decisions(peers, args.incidents)
        bench_latency(peers, args.samples, args.timeout)
    finally:
        Organization.objects.filter(slug__startswith=PREFIX).delete()


if __name__ == "__main__":
    main()
