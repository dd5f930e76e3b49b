#!/usr/bin/env python
"""Sustained HTTP check throughput of one worker process (and of two), driven the way the
product drives it, with the earlier engines as baselines in the same run.

A local target (benchmarks/target.py, a separate process on 127.0.0.1) answers every request
after 50 ms with `200 ok`, on a new connection per check. The benchmark owns an organization
of HTTP monitors with interval I (default 10 s) whose `next_check_at` are spread evenly over
the interval, so `rate * I` monitors come due at `rate` checks/s, continuously. Each monitor
asserts `status == 200` and `body contains "ok"`.

Every check goes through the engine: `engine.claim_due()` (the dispatcher's claim, every
`--tick` s, in the measured process), then the `run_checks` task body `engine.run_monitors`
(load, `spec_for`, the process's check loop, `results_record`: insert, state fold, usage) on
PostgreSQL. Modes (printed labels in brackets):

* `old` [old]: the engine before the check loop (`--old REF`, default the parent of the
  check loop's commit) in its task mode: a fresh event loop and aiohttp session per batch.
  Run from a temporary git worktree of that commit by its own benchmark script.
* `aiohttp` [aio 1p, aio 2p]: the check loop with the aiohttp client (`--aiohttp REF`,
  default the merge base with `main`), in one and in two worker processes, by that commit's
  own script in a temporary worktree.
* `loop` [curl 1p]: this tree, the check loop with the libcurl client: a worker on Celery's
  threads pool (`--threads` task threads, default 4); the claimed batches (TASK_BATCH each)
  queue for the task threads, which all feed the one check loop of the process.
* `loop2` [curl 2p]: `loop` in two worker processes at once (each claims with SKIP LOCKED, so
  they share the schedule as two workers do); their total is reported. The offered rate is
  the total: a rate one process cannot hold shows how close two come to twice one.
* `task` [curl tsk]: a prefork pool process: the task body one batch after the other.
* `checker` [curl chk] (control): the paced schedule through the check loop, no database.
* `raw` (control): the same schedule with a bare aiohttp GET per check.

Measured per rate step, after a warm-up: checks completed per minute, scheduler lag (check
start - its due time; p50/p95/max), the engine's own response_time_ms p50/p95 and what it
adds to the true 50 ms (the distortion), time in the claim and in recording as a share of
wall time and per check, and cores used by the worker process(es), the target and
PostgreSQL, with the worker CPU per check (the 2 cores are shared with whatever else runs on
the machine; the load average is printed on every step). A step holds when lag p95 < 1 s, it
keeps up (>= 97 % of the offered rate) and the added latency p95 is under the bar: 5 ms up to
50,000 checks/min, 20 ms above (`--max-added-ms` sets one bar for all). Every mode runs every
rate (`--keep-going`; without it a mode stops at its first broken step). The run ends with
one table of every engine's steps side by side.

    DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/healthorch_bench \\
    CACHE_URL=redis://127.0.0.1:6379/1 LOG_LEVEL=WARNING \\
    .venv/bin/python benchmarks/checks.py --keep-going [--modes old,aiohttp,loop,loop2]
        [--rates 833,1667,3333] [--step-seconds 10] [--warmup 3]
        [--threads 4] [--tick 0.2] [--interval 10] [--host 127.0.0.1] [--old REF]
        [--aiohttp REF] [--max-added-ms MS] [--profile]

`loop@1` is `loop` with a GIL switch interval of 1 ms instead of Python's 5. `--profile` runs
each mode's first rate only, under cProfile in every thread, and prints the top functions.
Runs in the kept test database `test_<name>` (use a database name of its own: the run leaves
its monitors there). About 12 minutes with the default modes and rates.
"""

# SQL here is built from model table names and constants; values always go as parameters.
# ruff: noqa: S608

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

TRUE_LATENCY_MS = 50.0
# The engine before the check loop (decision 0017): a fresh event loop per batch.
OLD_ENGINE = "691d0f2^"
ORG_SLUG = "bench-checks"
ASSERTIONS = ["status == 200", 'body contains "ok"']
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- CPU accounting (read-only /proc) ---------------------------------------------------------


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a process and all its descendants (a worker and its check process)."""
    total = _proc_cpu(pid)
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids = task.read_text().split()
        except OSError:
            continue
        total += sum(_tree_cpu(int(kid)) for kid in kids)
    return total


def _check_process_cpu() -> float:
    """CPU seconds of this process's check process (HEALTHORCH_CHECK_PROCESS), if it has one."""
    from apps.monitors.checkproc import shared_process_loop

    pid = shared_process_loop().child_pid
    return _proc_cpu(pid) if pid else 0.0


def _postgres_cpu() -> float:
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                    total += _proc_cpu(int(entry.name))
            except OSError:
                continue
    return total


def _machine_idle() -> float:
    # Seconds of idle CPU time over all cores since boot.
    fields = Path("/proc/stat").read_text().splitlines()[0].split()
    return (int(fields[4]) + int(fields[5])) / CLK_TCK


# --- Fixture ----------------------------------------------------------------------------------


def prepare(*, n_max: int, host: str, port: int, interval: int):
    """Create (once) or reuse n_max HTTP monitors of the bench organization, aim them at the
    target, pause them all; move other benchmarks' due monitors out of this run's way."""
    from apps.monitors.models import (
        CheckResult,
        Monitor,
        MonitorKind,
        MonitorSchedule,
        ScheduleLane,
    )
    from apps.plans import services
    from apps.tenants.models import Organization

    services.plans_ensure_defaults()
    org, _ = Organization.objects.get_or_create(slug=ORG_SLUG, defaults={"name": "Bench checks"})
    services.organization_change_plan(org=org, plan_code="enterprise", source="benchmark")
    existing = Monitor.objects.filter(organization=org).count()
    if existing < n_max:
        Monitor.objects.bulk_create(
            [
                Monitor(
                    organization=org,
                    name=f"bench http {i}",
                    slug=f"bench-http-{i}",
                    kind=MonitorKind.HTTP,
                    paused=True,
                )
                for i in range(existing, n_max)
            ],
            batch_size=2000,
        )
    config = {
        "url": f"http://{host}:{port}/health",
        "method": "GET",
        "expected_status": [[200, 200]],
        "assertions": ASSERTIONS,
    }
    Monitor.objects.filter(organization=org).update(
        config=config,
        kind=MonitorKind.HTTP,
        interval_seconds=interval,
        timeout_seconds=10,
        paused=True,
        status="unknown",
        consecutive_failures=0,
        consecutive_successes=0,
    )
    MonitorSchedule.objects.filter(monitor__organization=org).delete()
    CheckResult.objects.filter(organization=org).delete()
    foreign = (
        MonitorSchedule.objects.exclude(monitor__organization=org)
        .filter(lane=ScheduleLane.CHECK, next_check_at__lte=timezone.now() + timedelta(hours=1))
        .update(next_check_at=timezone.now() + timedelta(days=365))
    )
    if foreign:
        print(f"(moved {foreign} due monitors of other organizations a year ahead)")
    return org


def arm(org, *, n: int, interval: int, start_in: float = 1.0) -> None:
    """Unpause the first n monitors with next_check_at spread evenly over one interval.

    Steady state: a monitor never checked yet starts as up, so no step of this tree spends
    its window on first checks that change every status (opening the timelines, waking the
    incident rules: a one-off cost of a new monitor, not of checking). The baseline trees'
    own scripts start their monitors unknown; their first pass falls in the warm-up when it
    is at least an interval (`--warmup`)."""
    from apps.monitors.models import Monitor, MonitorSchedule

    table = Monitor._meta.db_table
    schedule = MonitorSchedule._meta.db_table
    start = timezone.now() + timedelta(seconds=start_in)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH ranked AS (
                SELECT id, row_number() OVER (ORDER BY slug) - 1 AS i
                FROM {table} WHERE organization_id = %s
            )
            UPDATE {table} m SET paused = ranked.i >= %s, interval_seconds = %s,
                status = CASE WHEN m.status = 'unknown' THEN 'up' ELSE m.status END,
                consecutive_successes = GREATEST(m.consecutive_successes, 1)
            FROM ranked WHERE m.id = ranked.id
            """,
            [org.pk, n, interval],
        )
        cursor.execute(
            f"DELETE FROM {schedule} WHERE monitor_id IN "
            f"(SELECT id FROM {table} WHERE organization_id = %s)",
            [org.pk],
        )
        cursor.execute(
            f"""
            INSERT INTO {schedule} (monitor_id, lane, next_check_at, interval_seconds, regions)
            SELECT id, 'check', %s + i * (%s::float8 / %s) * interval '1 second', %s, regions
            FROM (
                SELECT id, regions, row_number() OVER (ORDER BY slug) - 1 AS i
                FROM {table} WHERE organization_id = %s
            ) ranked
            WHERE i < %s
            """,
            [start, interval, n, interval, org.pk, n],
        )
        # Autovacuum is off on these machines' PostgreSQL; every claim and fold leaves a dead
        # row version, so clean up between steps as autovacuum would in production.
        cursor.execute(f"VACUUM ANALYZE {table}")
        cursor.execute(f"VACUUM ANALYZE {schedule}")


def disarm(org) -> None:
    from apps.monitors.models import Monitor, MonitorSchedule

    Monitor.objects.filter(organization=org).update(paused=True)
    MonitorSchedule.objects.filter(monitor__organization=org).delete()


# --- Measurement ------------------------------------------------------------------------------


@dataclass
class Step:
    mode: str
    rate: int
    seconds: float
    warmup: float
    # Per check: (wall time the check started, lag s, response_time_ms, outcome)
    checks: list[tuple[float, float, float | None, str]] = field(default_factory=list)
    completed: list[tuple[float, int]] = field(default_factory=list)  # (wall at done, n)
    phase: dict[str, list[tuple[float, float, int]]] = field(
        default_factory=lambda: {"claim": [], "load": [], "check": [], "record": []}
    )  # (wall at end, seconds, checks)
    window: tuple[float, float] = (0.0, 0.0)
    cpu: dict[str, float] = field(default_factory=dict)

    def note(self, phase: str, seconds: float, n: int) -> None:
        self.phase[phase].append((time.time(), seconds, n))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def summarize(step: Step, max_added_ms: float) -> dict:
    w0, w1 = step.window
    span = w1 - w0
    inside = [c for c in step.checks if w0 <= c[0] < w1]
    lags = [c[1] for c in inside]
    latency = [c[2] for c in inside if c[2] is not None]
    done = sum(n for t, n in step.completed if w0 <= t < w1)
    outcomes: dict[str, int] = {}
    for c in inside:
        outcomes[c[3]] = outcomes.get(c[3], 0) + 1
    phases = {}
    for name, rows in step.phase.items():
        rows = [r for r in rows if w0 <= r[0] < w1]
        busy = sum(r[1] for r in rows)
        n = sum(r[2] for r in rows)
        phases[name] = (busy / span if span else 0.0, busy / n * 1e6 if n else float("nan"))
    p95_latency = pct(latency, 0.95)
    result = {
        "offered_per_min": step.rate * 60,
        "done_per_min": done / span * 60 if span else 0.0,
        "lag_p50": pct(lags, 0.5),
        "lag_p95": pct(lags, 0.95),
        "lag_max": max(lags) if lags else float("nan"),
        "lat_p50": pct(latency, 0.5),
        "lat_p95": p95_latency,
        "added_p95": p95_latency - TRUE_LATENCY_MS,
        "outcomes": outcomes,
        "phases": phases,
        "cpu": step.cpu,
        "bar": max_added_ms,
    }
    result["held"] = (
        result["lag_p95"] < 1.0
        and result["added_p95"] <= max_added_ms
        and result["done_per_min"] >= 0.97 * result["offered_per_min"]
    )
    return result


class CpuMeter:
    def __init__(self, target_pid: int) -> None:
        self.target_pid = target_pid
        self.worker_pids: list[int] | None = None  # worker processes other than this one

    def read(self) -> dict[str, float]:
        if self.worker_pids:
            workers = sum(_tree_cpu(pid) for pid in self.worker_pids)
        else:
            workers = time.process_time() + _check_process_cpu()
        return {
            "wall": time.time(),
            "checker": workers,
            "target": _proc_cpu(self.target_pid),
            "postgres": _postgres_cpu(),
            "idle": _machine_idle(),
        }


def cpu_delta(start: dict[str, float], end: dict[str, float]) -> dict[str, float]:
    """Cores used per second of wall time between two reads."""
    wall = end["wall"] - start["wall"]
    used = {k: (end[k] - start[k]) / wall for k in start if k not in ("wall", "idle")}
    used["busy (machine)"] = (os.cpu_count() or 2) - (end["idle"] - start["idle"]) / wall
    return used


def bar_for(rate: int, fixed: float | None) -> float:
    """The added-latency bar of a step: 5 ms up to 50,000 checks/min, 20 ms above."""
    if fixed is not None:
        return fixed
    return 5.0 if rate * 60 <= 50_000 else 20.0


class Profiles:
    """cProfile in every thread that runs benchmark work (cProfile is per thread)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.profiles: list[cProfile.Profile] = []
        self.local = threading.local()

    def start_here(self) -> None:
        if self.enabled:
            profile = cProfile.Profile()
            self.profiles.append(profile)
            self.local.profile = profile
            profile.enable()

    def stop_here(self) -> None:
        profile = getattr(self.local, "profile", None)
        if profile is not None:
            profile.disable()

    def report(self, top: int = 30) -> str:
        out = io.StringIO()
        stats = pstats.Stats(self.profiles[0], stream=out)
        for profile in self.profiles[1:]:
            stats.add(profile)
        stats.sort_stats("tottime").print_stats(top)
        out.write("\n--- by cumulative time ---\n")
        stats.sort_stats("cumulative").print_stats(top)
        return out.getvalue()


# --- Worker modes: the task body, on one thread (prefork) or several (threads pool) -----------


def worker_step(
    org,
    step: Step,
    *,
    interval: int,
    tick: float,
    threads: int,
    meter: CpuMeter | None,
    profiles: Profiles,
    armed: bool = False,
    start_at: float | None = None,
) -> None:
    """Claim every tick; run the claimed batches through `engine.run_monitors` on `threads`
    task threads (1: a prefork process, batch after batch). A check's start is taken where
    the check loop starts it; its lag is that start minus its due time."""
    from apps.monitors import engine

    if not armed:
        arm(org, n=step.rate * interval, interval=interval)
    started_at: dict[str, float] = {}
    original_record = engine.results_record

    def timed_record(**kwargs):
        # Each outcome carries its check's start, stamped by the check loop (in this process
        # or in its check process).
        for monitor, outcome in zip(kwargs["monitors"], kwargs["outcomes"], strict=True):
            if outcome.started_at is not None:
                started_at[str(monitor.pk)] = outcome.started_at
        began = time.perf_counter()
        rows = original_record(**kwargs)
        step.note("record", time.perf_counter() - began, len(rows))
        return rows

    engine.results_record = timed_record
    pool = ThreadPoolExecutor(threads, thread_name_prefix="task", initializer=profiles.start_here)
    futures = []

    def task(chunk: list[str], due: dict[str, float]) -> None:
        rows = engine.run_monitors(chunk)
        for row in rows:
            key = str(row.monitor_id)
            begun = started_at.pop(key, time.time())
            step.checks.append((begun, begun - due[key], row.response_time_ms, row.outcome))
        step.completed.append((time.time(), len(rows)))

    profiles.start_here()
    if start_at is not None:
        time.sleep(max(0.0, start_at - time.time()))
    t0 = time.time()
    step.window = (t0 + step.warmup, t0 + step.warmup + step.seconds)
    cpu_start = None
    next_tick = time.monotonic()
    try:
        while time.time() < step.window[1]:
            if cpu_start is None and time.time() >= step.window[0] and meter is not None:
                cpu_start = meter.read()
            now = timezone.now()
            began = time.perf_counter()
            claimed = [c for c in engine.claim_due(now=now) if c.run]
            step.note("claim", time.perf_counter() - began, len(claimed))
            due = {c.monitor_id: now.timestamp() - c.lag_seconds for c in claimed}
            ids = list(due)
            for start in range(0, len(ids), engine.TASK_BATCH):
                chunk = ids[start : start + engine.TASK_BATCH]
                if threads == 1:
                    task(chunk, due)  # prefork: the claim waits for the batch, as in task mode
                else:
                    futures.append(pool.submit(task, chunk, due))
            next_tick += tick
            time.sleep(max(0.0, next_tick - time.monotonic()))
            if threads == 1:
                next_tick = max(next_tick, time.monotonic())
        cpu_end = meter.read() if meter is not None else None
        for future in futures:
            future.result(timeout=120)
    finally:
        engine.results_record = original_record
        for _ in range(threads):
            pool.submit(profiles.stop_here)
        for _ in range(threads):
            pool.submit(connection.close)
        pool.shutdown(wait=True)
        profiles.stop_here()
    if not armed:
        disarm(org)
    if cpu_start is not None and cpu_end is not None:
        step.cpu = cpu_delta(cpu_start, cpu_end)


async def checker_only_step(
    org,
    step: Step,
    *,
    interval: int,
    slot: float,
    meter: CpuMeter,
    profiles: Profiles,
    raw: bool = False,
):
    """Control: the same paced schedule through the check loop, without any database work
    (specs built once up front; nothing claimed, loaded or recorded). What the HTTP check
    path alone costs in this process. raw=True: a bare aiohttp GET per check instead (new
    connection each, body read, `ok` looked for), the floor this machine allows."""
    import aiohttp

    from apps.monitors import engine
    from apps.monitors.checkers.base import CheckOutcome
    from apps.monitors.checkloop import shared_loop
    from apps.monitors.models import Monitor

    loop = asyncio.get_running_loop()
    session = None
    if raw:
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True, limit=200, use_dns_cache=False)
        )

        async def bare(spec) -> CheckOutcome:
            started = time.monotonic()
            async with session.get(spec.config["url"]) as response:
                body = await response.read()
            took = (time.monotonic() - started) * 1000
            ok = response.status == 200 and b"ok" in body
            return CheckOutcome("up" if ok else "down", response_time_ms=took)

        async def run_specs(specs):
            return await asyncio.gather(*(bare(s) for s in specs))
    else:
        checks = shared_loop()

        async def run_specs(specs):
            return await asyncio.wrap_future(checks.submit(specs, allow_private=True))

    with ThreadPoolExecutor(1) as pool:
        monitors = await loop.run_in_executor(
            pool, lambda: list(Monitor.objects.filter(organization=org)[: step.rate * interval])
        )
        await loop.run_in_executor(pool, lambda: connection.close())
    specs = [engine.spec_for(m) for m in monitors]
    profiles.start_here()
    tasks: set[asyncio.Task] = set()

    async def run(group_specs, due):
        await asyncio.sleep(max(0.0, due - time.time()))
        begun = time.time()
        started = time.perf_counter()
        outcomes = await run_specs(group_specs)
        step.note("check", time.perf_counter() - started, len(group_specs))
        for o in outcomes:
            step.checks.append((begun, begun - due, o.response_time_ms, o.outcome))
        step.completed.append((time.time(), len(outcomes)))

    t0 = time.time() + 0.2
    step.window = (t0 + step.warmup, t0 + step.warmup + step.seconds)
    per_slot = step.rate * slot
    cpu_start = None
    i, k = 0, 0
    while True:
        due = t0 + k * slot
        if due >= step.window[1]:
            break
        if cpu_start is None and time.time() >= step.window[0]:
            cpu_start = meter.read()
        n = int((k + 1) * per_slot) - int(k * per_slot)
        group = [specs[(i + j) % len(specs)] for j in range(n)]
        i += n
        k += 1
        if group:
            task = asyncio.create_task(run(group, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.sleep(max(0.0, due - 0.05 - time.time()))  # stay ~50 ms ahead
    cpu_end = meter.read()
    if tasks:
        await asyncio.wait(set(tasks), timeout=30)
    if session is not None:
        await session.close()
    profiles.stop_here()
    if cpu_start is not None:
        step.cpu = cpu_delta(cpu_start, cpu_end)


# --- Several worker processes -------------------------------------------------------------------


def child_main(args) -> None:
    """One worker process of `--processes N`: the step on an armed schedule; raw figures to a
    file for the parent to merge."""
    from apps.tenants.models import Organization

    # The same layout as the parent's modes, the check process started before "ready".
    with worker_layout("proc" if args.child_check_process else "loop"):
        # The parent made (and migrated) the test database: connect to it directly; checking
        # its migrations again took these processes a minute on a loaded machine.
        setup_test_environment()
        connection.settings_dict["NAME"] = connection.creation._get_test_db_name()
        org = Organization.objects.get(slug=ORG_SLUG)
        step = Step("child", args.child_rate, args.step_seconds, args.warmup)
        # Ready (Django loaded, database reached); the parent then names one start for all.
        out = Path(args.child_out)
        Path(f"{out}.ready").touch()
        go = out.parent / "go"
        while not go.exists():
            time.sleep(0.02)
        args.start_at = float(go.read_text())
        worker_step(
            org,
            step,
            interval=args.interval,
            tick=args.tick,
            threads=args.threads,
            meter=None,
            profiles=Profiles(False),
            armed=True,
            start_at=args.start_at,
        )
    Path(args.child_out).write_text(
        json.dumps({"checks": step.checks, "completed": step.completed, "phase": step.phase})
    )


def processes_step(
    org, step: Step, *, args, meter: CpuMeter, processes: int, check_process: bool = False
) -> None:
    arm(org, n=step.rate * args.interval, interval=args.interval)
    connection.close()
    scratch = Path(tempfile.mkdtemp(prefix="checks-children-"))
    outs = [str(scratch / f"worker-{i}.json") for i in range(processes)]
    children = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--child-out",
                out,
                "--child-rate",
                str(step.rate),
                "--step-seconds",
                str(step.seconds),
                "--warmup",
                str(step.warmup),
                "--interval",
                str(args.interval),
                "--tick",
                str(args.tick),
                "--threads",
                str(args.threads),
                *(["--child-check-process"] if check_process else []),
            ]
        )
        for out in outs
    ]
    deadline = time.time() + 120
    while not all(Path(f"{out}.ready").exists() for out in outs):
        if time.time() > deadline or any(c.poll() is not None for c in children):
            raise SystemExit("a worker process did not start")
        time.sleep(0.05)
    start_at = time.time() + 0.5
    (scratch / "go.tmp").write_text(str(start_at))
    (scratch / "go.tmp").rename(scratch / "go")  # whole, never half written
    meter.worker_pids = [c.pid for c in children]
    time.sleep(max(0.0, start_at + step.warmup - time.time()))
    cpu_start = meter.read()
    time.sleep(max(0.0, start_at + step.warmup + step.seconds - time.time()))
    cpu_end = meter.read()
    meter.worker_pids = None
    for child in children:
        child.wait(timeout=180)
    step.window = (start_at + step.warmup, start_at + step.warmup + step.seconds)
    for out in outs:
        data = json.loads(Path(out).read_text())
        step.checks.extend(tuple(c) for c in data["checks"])
        step.completed.extend(tuple(c) for c in data["completed"])
        for name, rows in data["phase"].items():
            step.phase[name].extend(tuple(r) for r in rows)
    # Each child's windows start within a few ms of the parent's (same start_at).
    shutil.rmtree(scratch, ignore_errors=True)
    step.cpu = cpu_delta(cpu_start, cpu_end)
    disarm(org)


# --- Baseline: today's engine, from a checkout of its commit -----------------------------------


def resolve_ref(wanted: str | None) -> str:
    """A commit's short id; None: the merge base with `main` (today's engine)."""
    repo = HERE.parent
    ref = wanted
    if not ref:
        ref = subprocess.run(
            ["git", "-C", str(repo), "merge-base", "HEAD", "main"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short", ref],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def old_engine_argv(args) -> list[str]:
    """The engine before the check loop (a fresh event loop per batch), in its task mode."""
    return [
        "--mode",
        "task",
        "--rates",
        args.rates,
        "--floor-seconds",
        str(args.step_seconds),
        "--step-seconds",
        str(args.step_seconds),
        "--warmup",
        str(args.warmup),
        "--interval",
        str(args.interval),
        "--tick",
        str(args.tick),
        "--max-added-ms",
        str(args.max_added_ms or 20.0),  # the lenient bar at every step
    ]


def aiohttp_loop_argv(args) -> list[str]:
    """The aiohttp check loop (the engine this branch starts from), 1 and 2 processes."""
    return [
        "--modes",
        "loop,loop2",
        "--rates",
        args.rates,
        "--keep-going",
        "--step-seconds",
        str(args.step_seconds),
        "--warmup",
        str(args.warmup),
        "--interval",
        str(args.interval),
        "--tick",
        str(args.tick),
        "--threads",
        str(args.threads),
    ]


def run_tree(ref: str, argv: list[str], labels: dict[str, str]) -> list[str]:
    """Another commit's engine: its own benchmark script in a temporary worktree, against
    the same database; returns its step lines as printed, relabelled by `labels`."""
    repo = HERE.parent
    where = Path(tempfile.mkdtemp(prefix="checks-baseline-"))
    tree = where / "tree"
    subprocess.run(
        ["git", "-C", str(repo), "worktree", "add", "--detach", "--quiet", str(tree), ref],
        check=True,
    )
    try:
        out = subprocess.run(
            [sys.executable, str(tree / "benchmarks" / "checks.py"), *argv],
            capture_output=True,
            text=True,
            timeout=1800,
            # From inside the tree: Celery's Django fixup puts the working directory first on
            # sys.path, which would import this tree's apps instead of the baseline's.
            cwd=tree,
        )
        steps = []
        done = 0.0
        keep = False
        for line in out.stdout.splitlines():
            first = line.split(" ", 1)[0]
            if first in labels and "/s " in line:
                done = float(line.split()[3])
                steps.append(f"{labels[first]:8}" + line[8:])
                keep = True
            elif keep and line.startswith(" " * 17):
                steps.append(line)
                # The same derived figure as this script prints for its own modes.
                cores = re.search(r"(?:checker|worker\(s\)) ([0-9.]+)", line)
                if cores and done and "CPU per check" not in out.stdout:
                    per_check = float(cores.group(1)) * 60 / done * 1e3
                    steps.append(f"{'':17}worker CPU per check {per_check:.2f} ms")
            else:
                keep = False
        if out.returncode != 0:
            steps.append(f"({ref} failed: {out.stderr.strip().splitlines()[-1:]})")
        return steps
    finally:
        subprocess.run(
            ["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)], check=False
        )
        shutil.rmtree(where, ignore_errors=True)


_STEP_LINE = re.compile(
    r"^(?P<mode>.{8}) +(?P<rate>\d+)/s +(?P<offered>\d+) +(?P<done>\d+) +(?P<lag50>-?\d+)"
    r" +(?P<lag95>-?\d+) +(?P<lagmax>-?\d+) +(?P<lat50>[-\d.na]+) +(?P<lat95>[-\d.na]+)"
    r" +(?P<added>[-+\d.na]+) +(?P<held>held|BROKE)"
)


def comparison(lines: list[str]) -> list[str]:
    """One table of every engine's steps, from the printed step lines (own and other trees')."""
    rows = []
    per_check = None
    for line in reversed(lines):  # the CPU line follows its step line
        if "worker CPU per check" in line:
            per_check = line.split("check", 1)[1].strip()
            continue
        if match := _STEP_LINE.match(line):
            rows.append((match, per_check or "-"))
            per_check = None
    out = [
        f"{'engine':8} {'offered':>8} {'done':>8} {'dist p50':>8} {'dist p95':>8}"
        f" {'lag p95':>8} {'CPU/check':>9}   (per min; distortion = latency - 50 ms; lag ms)"
    ]
    for match, cpu in reversed(rows):
        lat50 = float(match["lat50"])
        out.append(
            f"{match['mode']:8} {int(match['offered']):8,} {int(match['done']):8,}"
            f" {lat50 - TRUE_LATENCY_MS:+8.1f} {float(match['added']):+8.1f}"
            f" {int(match['lag95']):8,} {cpu:>9}   {match['held']}"
        )
    return out


# --- Driver -----------------------------------------------------------------------------------


def start_target(delay: float, max_seconds: float) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "target.py"),
            "--port",
            "0",
            "--delay",
            str(delay),
            "--max-seconds",
            str(max_seconds),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith("PORT "):
        proc.kill()
        raise SystemExit(f"target did not start: {line!r}")
    return proc, int(line.split()[1])


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# What this tree's modes are called in the printed lines (the other trees' are relabelled).
LABELS = {
    "loop": "curl 1p",
    "loop2": "curl 2p",
    "proc": "cp 1p",
    "proc2": "cp 2p",
    "task": "curl tsk",
    "checker": "curl chk",
}


@contextlib.contextmanager
def worker_layout(mode: str):
    """What a worker mode changes in this process around its step, put back after it:
    `proc` runs the check loop in a check process (HEALTHORCH_CHECK_PROCESS), started before
    the step as a running worker has it (its Django loading is start-up, not checking);
    `loop@N` sets a GIL switch interval of N ms instead of Python's 5."""
    if mode == "proc":
        from django.conf import settings as django_settings

        from apps.monitors.checkproc import shared_process_loop

        django_settings.HEALTHORCH_CHECK_PROCESS = True
        shared_process_loop().start()
        try:
            yield
        finally:
            django_settings.HEALTHORCH_CHECK_PROCESS = False
            shared_process_loop().close()
    elif mode.startswith("loop@"):
        from apps.monitors.checkloop import shared_loop

        shared_loop().start()
        default = sys.getswitchinterval()
        sys.setswitchinterval(float(mode.split("@")[1]) / 1000)
        try:
            yield
        finally:
            sys.setswitchinterval(default)
    else:
        yield


def print_step(s: Step, r: dict) -> list[str]:
    """Print a step's lines (and return them for the closing comparison)."""
    lines: list[str] = []
    ph = r["phases"]
    cpu = r["cpu"]
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items()))
    lines.append(
        f"{LABELS.get(s.mode, s.mode):8} {s.rate:5d}/s {r['offered_per_min']:8.0f} {r['done_per_min']:8.0f}"
        f" {r['lag_p50'] * 1000:7.0f} {r['lag_p95'] * 1000:7.0f} {r['lag_max'] * 1000:7.0f}"
        f" {r['lat_p50']:6.1f} {r['lat_p95']:6.1f} {r['added_p95']:+6.1f}"
        f"  {'held' if r['held'] else 'BROKE'} (bar {r['bar']:g} ms)  load {loadavg()}"
    )
    others = (
        cpu.get("busy (machine)", 0)
        - cpu.get("checker", 0)
        - cpu.get("target", 0)
        - cpu.get("postgres", 0)
    )
    lines.append(
        f"{'':17}DB busy share/us per check: claim {ph['claim'][0]:.0%}/{ph['claim'][1]:.0f}"
        f"  record {ph['record'][0]:.0%}/{ph['record'][1]:.0f}"
        f"  | cores: worker(s) {cpu.get('checker', 0):.2f} target {cpu.get('target', 0):.2f}"
        f" postgres {cpu.get('postgres', 0):.2f} machine {cpu.get('busy (machine)', 0):.2f}/2"
        f" (others {max(0.0, others):.2f}) | {outcomes}"
    )
    if r["done_per_min"]:
        per_check = cpu.get("checker", 0) * 60 / r["done_per_min"] * 1e3
        lines.append(f"{'':17}worker CPU per check {per_check:.2f} ms")
    print("\n".join(lines))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rates", default="833,1667,3333", help="checks/s per step (50k, 100k, 200k/min)"
    )
    parser.add_argument(
        "--modes",
        default="old,aiohttp,loop,loop2",
        help="comma-separated: old (the engine before the check loop, --old REF), aiohttp "
        "(the aiohttp check loop in 1 and 2 processes, --aiohttp REF), task, loop, loop2 "
        "(loop in two processes), "
        "loop@MS (loop with a GIL switch interval of MS ms), checker, raw",
    )
    parser.add_argument("--step-seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--tick", type=float, default=0.2, help="dispatcher period, s")
    parser.add_argument("--threads", type=int, default=4, help="task threads of a loop worker")
    parser.add_argument("--slot", type=float, default=0.01, help="checker/raw pacing slot, s")
    parser.add_argument("--interval", type=int, default=10, help="monitor interval, s")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="target host in the URL (a name goes through the SSRF resolver)",
    )
    parser.add_argument(
        "--old", default=OLD_ENGINE, help="commit of the engine before the check loop"
    )
    parser.add_argument(
        "--aiohttp", default=None, help="commit of the aiohttp check loop (default: merge base)"
    )
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--max-added-ms", type=float, default=None)
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="run every rate even after a step broke (a loaded machine; compare the modes)",
    )
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    parser.add_argument("--child-rate", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-check-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_out:
        child_main(args)
        return
    rates = [int(r) for r in args.rates.split(",")]
    if args.profile:
        rates = rates[:1]
    modes = args.modes.split(",")

    print(f"load before: {loadavg()} (1, 5, 15 min), cores {os.cpu_count()}")
    baseline_lines: list[str] = []
    if "old" in modes:
        ref = resolve_ref(args.old)
        print(f"old: the engine before the check loop at {ref}, task mode, its own script ...")
        baseline_lines += run_tree(ref, old_engine_argv(args), {"task": "old"})
    if "aiohttp" in modes:
        ref = resolve_ref(args.aiohttp)
        print(f"aiohttp: the aiohttp check loop at {ref}, 1 and 2 processes, its own script ...")
        baseline_lines += run_tree(
            ref, aiohttp_loop_argv(args), {"loop": "aio 1p", "loop2": "aio 2p"}
        )
    own = ("old", "aiohttp")
    setup_test_environment()
    connection.creation.create_test_db(keepdb=True, verbosity=0)
    # Generous: on a loaded machine a step (arming, a second process starting) takes minutes,
    # and a target that has exited turns every later check into "down".
    budget = 3 * len(modes) * len(rates) * (args.step_seconds + args.warmup + 60) + 600
    target, port = start_target(TRUE_LATENCY_MS / 1000, budget)
    try:
        org = prepare(
            n_max=max(rates) * args.interval, host=args.host, port=port, interval=args.interval
        )
        connection.close()
        meter = CpuMeter(target.pid)
        print(
            f"database {connection.settings_dict['NAME']}, target {args.host}:{port} "
            f"(answers after {TRUE_LATENCY_MS:.0f} ms, new connection per check), "
            f"interval {args.interval} s, dispatcher tick {args.tick} s, batch 200, "
            f"loop worker threads {args.threads}"
        )
        header = (
            f"\n{'mode':8} {'rate':>7} {'offered':>8} {'done':>8} {'lag p50':>7} {'p95':>7}"
            f" {'max':>7} {'lat50':>6} {'lat95':>6} {'added':>6}   (per min; lag ms; latency ms)"
        )
        print(header)
        if baseline_lines:
            print("\n".join(baseline_lines))
        results = []
        own_lines: list[str] = []
        for mode in [m for m in modes if m not in own]:
            for rate in rates:
                step = Step(mode, rate, args.step_seconds, args.warmup)
                profiles = Profiles(args.profile)
                if mode in ("checker", "raw"):
                    asyncio.run(
                        checker_only_step(
                            org,
                            step,
                            raw=mode == "raw",
                            interval=args.interval,
                            slot=args.slot,
                            meter=meter,
                            profiles=profiles,
                        )
                    )
                elif mode in ("loop2", "proc2"):
                    processes_step(
                        org,
                        step,
                        args=args,
                        meter=meter,
                        processes=2,
                        check_process=mode == "proc2",
                    )
                else:
                    with worker_layout(mode):
                        worker_step(
                            org,
                            step,
                            interval=args.interval,
                            tick=args.tick,
                            threads=1 if mode == "task" else args.threads,
                            meter=meter,
                            profiles=profiles,
                        )
                    connection.close()
                summary = summarize(step, bar_for(rate, args.max_added_ms))
                results.append((step, summary))
                own_lines += print_step(step, summary)
                if args.profile and profiles.profiles:
                    print(f"\n--- cProfile, all threads, {mode} at {rate}/s ---")
                    print(profiles.report())
                if not summary["held"] and not args.keep_going:
                    break
        print()
        for mode in [m for m in modes if m not in own]:
            mine = [(s, r) for s, r in results if s.mode == mode]
            held = [s.rate for s, r in mine if r["held"]]
            best = max((r["done_per_min"] for _, r in mine), default=0)
            print(
                f"{mode:8} ceiling (highest step held) {(max(held) * 60 if held else 0):>7,}/min;"
                f" most done in a step {best:>9,.0f}/min"
            )
        print("\nAll engines side by side (this run):")
        print("\n".join(comparison(baseline_lines + own_lines)))
        print(f"load after: {loadavg()}")
    finally:
        target.terminate()
        try:
            _, err = target.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            target.kill()
            err = ""
        if err:
            print(err.strip())


if __name__ == "__main__":
    main()
