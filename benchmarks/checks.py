#!/usr/bin/env python
"""Sustained HTTP check throughput of one worker process, driven the way the product drives it.

A local target (benchmarks/target.py, a separate process on 127.0.0.1) answers every request
after 50 ms with `200 ok`, on a new connection per check (the checker's `force_close`). The
benchmark owns an organization of HTTP monitors with interval I (default 10 s) whose
`next_check_at` are spread evenly over the interval, so `rate * I` monitors come due at `rate`
checks/s, continuously. Each monitor asserts `status == 200` and `body contains "ok"`.

Every check goes through the engine: `engine.claim_due()` (dispatcher), the load query of
`run_monitors`, `engine.spec_for`, `engine.run_specs` (the http checker, assertions) and
`engine.results_record` (bulk insert, state fold, usage metering) on PostgreSQL. Modes:

* `pipeline`: one long-lived event loop. A dispatcher thread claims every `--tick` seconds
  what falls due before the next tick; the worker DB thread loads the claimed monitors; each
  check starts at its due time (micro-batches of `--slot` seconds through `run_specs`:
  pacing, not flooding; `--burst` runs everything claimed at once instead); results are
  recorded by `results_record` on the worker DB thread in batches of up to TASK_BATCH (200).
* `task`: exactly the Celery task body, `engine.run_monitors(ids)` (a fresh `asyncio.run` per
  batch of 200), batch after batch, as one prefork worker process runs its tasks; the claim
  runs inline between batches.
* `checker` (control, not in the default run): the paced schedule through `run_specs` with
  no database work at all: what the HTTP check path alone costs in this process.
* `raw` (control): the same schedule with a bare aiohttp GET per check (new connection, body
  read, no engine code): the floor of added latency this machine and target allow.

Measured per rate step, after a warm-up: checks completed per minute, scheduler lag (check
start - its due time; p50/p95/max), the engine's own response_time_ms p50/p95 and what it
adds to the true 50 ms, time in each DB phase (claim, load, record) as a share of wall time
and per check, and cores used by this process, the target and PostgreSQL (the 2 cores are
shared with whatever else runs on the machine). A step holds when lag p95 < 1 s, added
latency p95 <= 5 ms and it keeps up (>= 97 % of the offered rate). The pipeline ramps up from
the floor (500/s = 30,000/min) until a step breaks: the highest step held is the ceiling; if
the floor breaks it steps down (3/4, 1/2, 1/4 of it) to find the ceiling below.

    DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/healthorch_bench \\
    CACHE_URL=redis://127.0.0.1:6379/1 LOG_LEVEL=WARNING \\
    .venv/bin/python benchmarks/checks.py [--mode both|pipeline|task|checker|raw|all]
        [--rates 500,750,1000,1250,1500,2000] [--floor-seconds 20] [--step-seconds 8]
        [--tick 0.2] [--slot 0.01] [--interval 10] [--host 127.0.0.1] [--burst]
        [--max-added-ms 5] [--switch-interval S] [--patch-fold] [--profile]

`--patch-fold` is a counterfactual: in this process only (no file changes), Monitor
bulk_update (used by state.fold_outcomes) becomes one `UPDATE ... FROM (VALUES ...)`.
`--profile` runs only the first rate under cProfile in every thread and prints the top
functions. Runs in the kept test database `test_<name>`. About 1.5-2 minutes by default.
"""

# SQL here is built from model table names and constants; values always go as parameters.
# ruff: noqa: S608

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import subprocess
import sys
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
    """Unpause the first n monitors with next_check_at spread evenly over one interval."""
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
            UPDATE {table} m SET paused = ranked.i >= %s, interval_seconds = %s
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


def summarize(step: Step, max_added_ms: float = 5.0) -> dict:
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

    def read(self) -> dict[str, float]:
        return {
            "wall": time.time(),
            "checker": time.process_time(),
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


# --- Pipeline mode: one event loop, DB on two threads -----------------------------------------


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


async def pipeline_step(
    org,
    step: Step,
    *,
    interval: int,
    tick: float,
    pace: bool,
    slot: float,
    meter: CpuMeter,
    profiles: Profiles,
):
    """Dispatcher thread claims every tick; the event loop runs the checks; one worker DB
    thread loads the claimed monitors and records results in batches of up to TASK_BATCH.

    pace=True: claim what falls due before the next tick (claim_due(now=now + tick)) and
    start each check in a micro-batch at its due time (slots of `slot` seconds), so checks
    are spread like the schedule. pace=False: run everything claimed at once, in batches of
    TASK_BATCH, as the product's dispatch does (bursts once per tick)."""
    from apps.monitors import engine
    from apps.monitors.models import Monitor

    loop = asyncio.get_running_loop()
    dispatcher = ThreadPoolExecutor(
        1, thread_name_prefix="dispatcher", initializer=profiles.start_here
    )
    worker_db = ThreadPoolExecutor(
        1, thread_name_prefix="worker-db", initializer=profiles.start_here
    )
    profiles.start_here()
    await loop.run_in_executor(
        worker_db, lambda: arm(org, n=step.rate * interval, interval=interval)
    )
    lookahead = tick if pace else 0.0

    def claim():
        now = timezone.now()
        started = time.perf_counter()
        claimed = engine.claim_due(now=now + timedelta(seconds=lookahead))
        step.note("claim", time.perf_counter() - started, len(claimed))
        base = now.timestamp() + lookahead
        return [(c.monitor_id, base - c.lag_seconds) for c in claimed]  # (id, due wall time)

    def load(ids):
        started = time.perf_counter()
        monitors = list(Monitor.objects.filter(pk__in=list(ids), paused=False).select_related(None))
        step.note("load", time.perf_counter() - started, len(monitors))
        return monitors

    def record(monitors, outcomes):
        started = time.perf_counter()
        engine.results_record(monitors=monitors, outcomes=outcomes, region="default")
        step.note("record", time.perf_counter() - started, len(monitors))
        step.completed.append((time.time(), len(monitors)))

    pending: list[tuple[Monitor, object]] = []
    flushing: set[asyncio.Future] = set()

    def flush() -> None:
        while pending:
            chunk = pending[: engine.TASK_BATCH]
            del pending[: engine.TASK_BATCH]
            future = loop.run_in_executor(
                worker_db, record, [m for m, _ in chunk], [o for _, o in chunk]
            )
            flushing.add(future)
            future.add_done_callback(flushing.discard)

    async def run(group: list[tuple[Monitor, float]]):
        if pace:
            await asyncio.sleep(max(0.0, group[0][1] - time.time()))
        specs = [engine.spec_for(m) for m, _ in group]
        begun = time.time()
        started = time.perf_counter()
        outcomes = await engine.run_specs(specs)
        step.note("check", time.perf_counter() - started, len(specs))
        for (m, due), o in zip(group, outcomes, strict=True):
            step.checks.append((begun, begun - due, o.response_time_ms, o.outcome))
            pending.append((m, o))
        if len(pending) >= engine.TASK_BATCH:
            flush()

    async def start(items: list[tuple[str, float]]):
        due = dict(items)
        monitors = await loop.run_in_executor(worker_db, load, list(due))
        ordered = sorted(((m, due[str(m.pk)]) for m in monitors), key=lambda p: p[1])
        groups: list[list[tuple[Monitor, float]]] = []
        for item in ordered:
            if (
                groups
                and len(groups[-1]) < engine.TASK_BATCH
                and (not pace or item[1] - groups[-1][0][1] < slot)
            ):
                groups[-1].append(item)
            else:
                groups.append([item])
        for group in groups:
            spawn(run(group))

    tasks: set[asyncio.Task] = set()

    def spawn(coro) -> None:
        task = asyncio.create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    t0 = time.time()
    step.window = (t0 + step.warmup, t0 + step.warmup + step.seconds)
    cpu_start = None
    next_tick = time.monotonic()
    next_flush = time.monotonic() + tick
    while time.time() < step.window[1]:
        if cpu_start is None and time.time() >= step.window[0]:
            cpu_start = meter.read()
        items = await loop.run_in_executor(dispatcher, claim)
        if items:
            spawn(start(items))
        if time.monotonic() >= next_flush:  # record at least once per tick
            flush()
            next_flush = time.monotonic() + tick
        next_tick += tick
        await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
    cpu_end = meter.read()
    for _ in range(3):  # drain: checks in flight, then their records
        if tasks:
            await asyncio.wait(set(tasks), timeout=30)
        flush()
        if flushing:
            await asyncio.wait(set(flushing), timeout=30)
    await loop.run_in_executor(worker_db, disarm, org)
    for pool in (dispatcher, worker_db):
        pool.submit(profiles.stop_here).result()
        pool.submit(lambda: connection.close()).result()
        pool.shutdown()
    profiles.stop_here()
    if cpu_start is not None:
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
    """Control: the same paced schedule through engine.run_specs, without any database work
    (specs built once up front; nothing claimed, loaded or recorded). What the HTTP check
    path alone costs in this process. raw=True: a bare aiohttp GET per check instead (new
    connection each, body read, `ok` looked for), the floor this machine allows."""
    import aiohttp

    from apps.monitors import engine
    from apps.monitors.checkers.base import CheckOutcome
    from apps.monitors.models import Monitor

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
        run_specs = engine.run_specs

    loop = asyncio.get_running_loop()
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


# --- Task mode: the Celery task body, one batch after the other ---------------------------------


def task_step(org, step: Step, *, interval: int, tick: float, meter: CpuMeter, profiles):
    from apps.monitors import engine

    arm(org, n=step.rate * interval, interval=interval)
    profiles.start_here()
    original = engine.run_specs

    async def timed_run_specs(specs, **kwargs):
        started = time.perf_counter()
        outcomes = await original(specs, **kwargs)
        step.note("check", time.perf_counter() - started, len(specs))
        timed_run_specs.last = outcomes
        return outcomes

    engine.run_specs = timed_run_specs
    t0 = time.time()
    step.window = (t0 + step.warmup, t0 + step.warmup + step.seconds)
    cpu_start = None
    next_tick = time.monotonic()
    try:
        while time.time() < step.window[1]:
            if cpu_start is None and time.time() >= step.window[0]:
                cpu_start = meter.read()
            now = timezone.now()
            started = time.perf_counter()
            claimed = engine.claim_due(now=now)
            step.note("claim", time.perf_counter() - started, len(claimed))
            due = {c.monitor_id: now.timestamp() - c.lag_seconds for c in claimed}
            ids = list(due)
            for start in range(0, len(ids), engine.TASK_BATCH):
                chunk = ids[start : start + engine.TASK_BATCH]
                begun = time.time()
                started = time.perf_counter()
                rows = engine.run_monitors(chunk)  # load + asyncio.run(run_specs) + record
                whole = time.perf_counter() - started
                check = step.phase["check"][-1][1] if step.phase["check"] else 0.0
                step.note("record", whole - check, len(rows))  # load + record
                for row in rows:
                    step.checks.append(
                        (begun, begun - due[str(row.monitor_id)], row.response_time_ms, row.outcome)
                    )
                step.completed.append((time.time(), len(rows)))
            if not claimed:
                next_tick += tick
                time.sleep(max(0.0, next_tick - time.monotonic()))
            else:
                next_tick = time.monotonic()
    finally:
        engine.run_specs = original
        profiles.stop_here()
    cpu_end = meter.read()
    disarm(org)
    if cpu_start is not None:
        step.cpu = cpu_delta(cpu_start, cpu_end)


# --- Counterfactual (in this process only; the app code on disk is unchanged) -------------------


def patch_monitor_bulk_update() -> None:
    """`--patch-fold`: what fold_outcomes would cost if `Monitor.objects.bulk_update(...)`
    were one `UPDATE ... FROM (VALUES ...)` instead of Django's CASE WHEN per field and row.
    Same rows, same columns, same transaction; only the SQL generation differs."""
    from django.db import connections

    from apps.monitors.models import Monitor, MonitorQuerySet

    original = MonitorQuerySet.bulk_update

    def bulk_update(self, objs, fields, batch_size=None):
        objs = list(objs)
        if self.model is not Monitor or not objs:
            return original(self, objs, fields, batch_size)
        conn = connections[self.db]
        meta = Monitor._meta
        columns = [meta.get_field(name) for name in fields]
        casts = [meta.pk.db_type(conn)] + [f.db_type(conn) for f in columns]
        row = "(" + ", ".join(f"%s::{cast}" for cast in casts) + ")"
        names = ", ".join(["id"] + [f'"{f.column}"' for f in columns])
        sets = ", ".join(f'"{f.column}" = v."{f.column}"' for f in columns)
        params = []
        for obj in objs:
            params.append(meta.pk.get_db_prep_value(obj.pk, conn))
            params.extend(f.get_db_prep_save(getattr(obj, f.attname), conn) for f in columns)
        with conn.cursor() as cursor:
            cursor.execute(
                f"UPDATE {meta.db_table} AS m SET {sets} FROM (VALUES "
                + ", ".join([row] * len(objs))
                + f") AS v({names}) WHERE m.id = v.id",
                params,
            )
            return cursor.rowcount

    MonitorQuerySet.bulk_update = bulk_update


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


def print_step(s: Step, r: dict) -> None:
    ph = r["phases"]
    cpu = r["cpu"]
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items()))
    print(
        f"{s.mode:8} {s.rate:5d}/s {r['offered_per_min']:8.0f} {r['done_per_min']:8.0f}"
        f" {r['lag_p50'] * 1000:7.0f} {r['lag_p95'] * 1000:7.0f} {r['lag_max'] * 1000:7.0f}"
        f" {r['lat_p50']:6.1f} {r['lat_p95']:6.1f} {r['added_p95']:+6.1f}"
        f"  {'held' if r['held'] else 'BROKE'}"
    )
    print(
        f"{'':17}DB busy share/us per check: claim {ph['claim'][0]:.0%}/{ph['claim'][1]:.0f}"
        f"  load {ph['load'][0]:.0%}/{ph['load'][1]:.0f}"
        f"  record {ph['record'][0]:.0%}/{ph['record'][1]:.0f}"
        f"  | cores: checker {cpu.get('checker', 0):.2f} target {cpu.get('target', 0):.2f}"
        f" postgres {cpu.get('postgres', 0):.2f} machine {cpu.get('busy (machine)', 0):.2f}/2"
        f" (others {max(0.0, cpu.get('busy (machine)', 0) - cpu.get('checker', 0) - cpu.get('target', 0) - cpu.get('postgres', 0)):.2f})"
        f" | {outcomes}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rates",
        default="500,750,1000,1250,1500,2000",
        help="checks/s per step; the first is the floor (30,000/min = 500/s)",
    )
    parser.add_argument(
        "--mode",
        choices=["pipeline", "task", "checker", "raw", "both", "all"],
        default="both",
        help="both: ramp pipeline, then the floor rate in task mode; all: "
        "also ramp the checker alone (no database) as a control",
    )
    parser.add_argument("--floor-seconds", type=float, default=20.0)
    parser.add_argument("--step-seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--tick", type=float, default=0.2, help="dispatcher period, s")
    parser.add_argument(
        "--slot",
        type=float,
        default=0.01,
        help="pipeline pacing: checks due within one slot start together, s",
    )
    parser.add_argument(
        "--burst",
        action="store_true",
        help="pipeline without pacing: run all claimed at once per tick",
    )
    parser.add_argument("--interval", type=int, default=10, help="monitor interval, s")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="target host in the URL (a name goes through the SSRF resolver)",
    )
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--max-added-ms",
        type=float,
        default=5.0,
        help="latency bar of a step that holds (raise it to find the throughput/lag ceiling)",
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="sys.setswitchinterval (GIL hand-over, default 0.005 s)",
    )
    parser.add_argument(
        "--patch-fold",
        action="store_true",
        help="counterfactual: Monitor bulk_update as one UPDATE FROM VALUES",
    )
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    if args.profile:
        rates = rates[:1]

    if args.patch_fold:
        patch_monitor_bulk_update()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    setup_test_environment()
    connection.creation.create_test_db(keepdb=True, verbosity=0)
    budget = args.floor_seconds + len(rates) * (args.step_seconds + args.warmup) + 120
    target, port = start_target(TRUE_LATENCY_MS / 1000, budget * 2)
    try:
        org = prepare(
            n_max=max(rates) * args.interval, host=args.host, port=port, interval=args.interval
        )
        connection.close()
        meter = CpuMeter(target.pid)
        print(
            f"database {connection.settings_dict['NAME']}, target {args.host}:{port} "
            f"(answers after {TRUE_LATENCY_MS:.0f} ms, new connection per check), "
            f"interval {args.interval} s, dispatcher tick {args.tick} s, batch "
            f"{200}, concurrency cap 200, cores {os.cpu_count()}"
        )
        print(
            f"\n{'mode':8} {'rate':>7} {'offered':>8} {'done':>8} {'lag p50':>7} {'p95':>7}"
            f" {'max':>7} {'lat50':>6} {'lat95':>6} {'added':>6}   (per min; lag ms; latency ms)"
        )
        modes = {"both": ["pipeline", "task"], "all": ["pipeline", "task", "checker", "raw"]}.get(
            args.mode, [args.mode]
        )
        results = []
        for mode in modes:
            mode_rates = rates if (mode != "task" or args.mode == "task") else rates[:1]
            queue = list(mode_rates)
            descending = False
            i = -1
            while queue:
                rate = queue.pop(0)
                i += 1
                seconds = args.floor_seconds if i == 0 else args.step_seconds
                step = Step(mode + ("*" if args.patch_fold else ""), rate, seconds, args.warmup)
                profiles = Profiles(args.profile)
                if mode == "pipeline":
                    asyncio.run(
                        pipeline_step(
                            org,
                            step,
                            interval=args.interval,
                            tick=args.tick,
                            pace=not args.burst,
                            slot=args.slot,
                            meter=meter,
                            profiles=profiles,
                        )
                    )
                elif mode in ("checker", "raw"):
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
                else:
                    task_step(
                        org,
                        step,
                        interval=args.interval,
                        tick=args.tick,
                        meter=meter,
                        profiles=profiles,
                    )
                summary = summarize(step, args.max_added_ms)
                results.append((step, summary))
                print_step(step, summary)
                if args.profile:
                    print(f"\n--- cProfile, all threads, {mode} at {rate}/s ---")
                    print(profiles.report())
                if not summary["held"]:
                    if i == 0 and mode != "task" and not args.profile:
                        # The floor broke: look for the ceiling below it instead.
                        queue = [rate * 3 // 4, rate // 2, rate // 4]
                        descending = True
                    elif not descending:
                        break
                elif descending:
                    break  # the first rate that holds on the way down is the ceiling
        for mode in modes:
            mine = [(s, r) for s, r in results if s.mode.rstrip("*") == mode]
            held = [s.rate for s, r in mine if r["held"]]
            broke = [s.rate for s, r in mine if not r["held"]]
            floor = mine[0]
            print(
                f"\n{floor[0].mode}: floor 30,000/min {'MET' if floor[1]['held'] else 'MISSED'}"
                f" at {floor[0].rate * 60:,}/min;"
                f" ceiling (highest step held) "
                f"{(max(held) * 60 if held else 0):,}/min; first step broken: "
                f"{(min(broke) * 60 if broke else 'none')}"
            )
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
