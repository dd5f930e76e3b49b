#!/usr/bin/env python
"""Heartbeat ping throughput: `/ping/<uuid>` under gunicorn, driven by a local load generator.

Makes (once, reused later) 5,000 heartbeat monitors in the kept test database
`test_<name>`, starts `gunicorn healthorch.wsgi:application --workers 2` on a free port of
127.0.0.1 (DATABASE_URL pointing at that database, CONN_MAX_AGE=60, DEBUG=1,
LOG_LEVEL=WARNING, CACHE_URL as given), and drives GET /ping/<uuid> round-robin over the
monitors from an aiohttp client with a fixed number of concurrent requests (keep-alive
offered; gunicorn's sync workers close after each response) for a fixed time. 5,000
monitors keep every monitor far below the 120 pings/min rate limit. Prints requests/s,
p50/p99/max latency, status counts and errors, and the CPU used by gunicorn, PostgreSQL,
Redis and the load generator (all on the same 2 cores). Then replays pings in this process
through Django's test client to show what one ping costs: its queries, each with its median
time, and the Python around them (`--profile` adds cProfile's top functions).

    DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/healthorch_bench \\
    CACHE_URL=redis://127.0.0.1:6379/1 LOG_LEVEL=WARNING \\
    .venv/bin/python benchmarks/pings.py [--seconds 20] [--concurrency 32] [--monitors 5000]
        [--workers 2] [--profile]

About 40 s with the defaults. Target: >= 900 pings/s.
"""

# SQL here is built from model table names and constants; values always go as parameters.
# ruff: noqa: S608

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

ORG_SLUG = "bench-pings"
TARGET_RPS = 900
CLK_TCK = os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def _pids_named(*names: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in names:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cpu_snapshot(gunicorn_pid: int) -> dict[str, float]:
    return {
        "wall": time.time(),
        "gunicorn": sum(_proc_cpu(p) for p in [gunicorn_pid, *_children(gunicorn_pid)]),
        "postgres": sum(_proc_cpu(p) for p in _pids_named("postgres")),
        "redis": sum(_proc_cpu(p) for p in _pids_named("redis-server")),
        "load generator": time.process_time(),
        "idle": (lambda f: (int(f[4]) + int(f[5])) / CLK_TCK)(
            Path("/proc/stat").read_text().split("\n", 1)[0].split()
        ),
    }


def prepare(n: int) -> list[str]:
    from apps.monitors.models import Monitor, MonitorKind
    from apps.plans import services
    from apps.tenants.models import Organization

    services.plans_ensure_defaults()
    org, _ = Organization.objects.get_or_create(slug=ORG_SLUG, defaults={"name": "Bench pings"})
    services.organization_change_plan(org=org, plan_code="enterprise", source="benchmark")
    existing = Monitor.objects.filter(organization=org, kind=MonitorKind.HEARTBEAT).count()
    if existing < n:
        Monitor.objects.bulk_create(
            [
                Monitor(
                    organization=org,
                    name=f"bench heartbeat {i}",
                    slug=f"bench-heartbeat-{i}",
                    kind=MonitorKind.HEARTBEAT,
                    config={"period_seconds": 3600, "grace_seconds": 300},
                    ping_token=uuid.uuid4(),
                )
                for i in range(existing, n)
            ],
            batch_size=2000,
        )
    return [
        str(t)
        for t in Monitor.objects.filter(organization=org, kind=MonitorKind.HEARTBEAT)
        .order_by("slug")
        .values_list("ping_token", flat=True)[:n]
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(port: int, workers: int, database_name: str) -> subprocess.Popen:
    db = settings.DATABASES["default"]
    url = (
        f"postgres://{db['USER']}{':' + db['PASSWORD'] if db.get('PASSWORD') else ''}"
        f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{database_name}"
    )
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CONN_MAX_AGE": "60",
        "DEBUG": "1",
        "LOG_LEVEL": "WARNING",
        "CACHE_URL": os.environ.get("CACHE_URL", "redis://127.0.0.1:6379/1"),
        "DJANGO_SETTINGS_MODULE": "healthorch.settings",
    }
    return subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "healthorch.wsgi:application",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--no-control-socket",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


async def wait_ready(base: str, seconds: float = 60) -> None:
    import aiohttp

    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(f"{base}/health") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.25)
    raise SystemExit("gunicorn did not become ready")


async def load(
    base: str,
    tokens: list[str],
    *,
    seconds: float,
    warmup: float,
    concurrency: int,
    gunicorn_pid: int,
    max_requests: int,
):
    import aiohttp

    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors: dict[str, int] = {}
    counter = iter(range(max_requests))
    window: dict[str, float] = {}
    cpu: dict[str, dict[str, float]] = {}
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    timeout = aiohttp.ClientTimeout(total=10)
    start = time.monotonic()
    measure_from, stop_at = start + warmup, start + warmup + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        for i in counter:
            now = time.monotonic()
            if now >= stop_at:
                return
            url = f"{base}/ping/{tokens[i % len(tokens)]}"
            try:
                async with session.get(url) as response:
                    await response.read()
                    status = str(response.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                status = None
                name = type(exc).__name__
            done = time.monotonic()
            if now >= measure_from:
                if status is None:
                    errors[name] = errors.get(name, 0) + 1
                else:
                    statuses[status] = statuses.get(status, 0) + 1
                    latencies.append((done - now) * 1000)

    async def meter() -> None:
        await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
        cpu["start"] = cpu_snapshot(gunicorn_pid)
        window["start"] = time.monotonic()
        await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
        cpu["end"] = cpu_snapshot(gunicorn_pid)
        window["end"] = time.monotonic()

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(meter(), *(worker(session) for _ in range(concurrency)))
    span = window["end"] - window["start"]
    used = {
        k: (cpu["end"][k] - cpu["start"][k]) / span
        for k in cpu["start"]
        if k not in ("wall", "idle")
    }
    used["machine busy"] = (os.cpu_count() or 2) - (
        cpu["end"]["idle"] - cpu["start"]["idle"]
    ) / span
    return latencies, statuses, errors, span, used


def in_process(tokens: list[str], rounds: int, profile: bool):
    """Replay pings through the test client: the queries one ping issues and their cost."""
    client = Client()
    timings: dict[str, list[float]] = {}
    totals: list[float] = []
    sql_totals: list[float] = []
    current: list[tuple[str, float]] = []

    def timing(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            current.append((sql, time.perf_counter() - started))

    for token in tokens[:50]:  # warm
        client.get(f"/ping/{token}")
    statements: list[str] = []
    profiler = cProfile.Profile() if profile else None
    for n, token in enumerate(tokens[50 : 50 + rounds]):
        current.clear()
        with connection.execute_wrapper(timing):
            if profiler:
                profiler.enable()
            started = time.perf_counter()
            response = client.get(f"/ping/{token}")
            totals.append((time.perf_counter() - started) * 1e6)
            if profiler:
                profiler.disable()
        assert response.status_code == 200, response.status_code
        if n == 0:
            statements = [sql for sql, _ in current]
        for i, (_sql, spent) in enumerate(current):
            timings.setdefault(i, []).append(spent * 1e6)
        sql_totals.append(sum(s for _, s in current) * 1e6)
    # Reference floors for one ping in this process: the framework alone, the rate limit,
    # and the ping's writes as one raw statement (one round trip, autocommit).
    from apps.plans.metering import check_rate

    floors: dict[str, list[float]] = {"GET /health (middleware + routing only)": []}
    floors["check_rate (Redis INCR + EXPIRE, pipelined)"] = []
    floors["the ping's writes as one raw SQL statement"] = []
    rest = tokens[50 + rounds :] or tokens
    for i in range(min(rounds, len(rest))):
        started = time.perf_counter()
        client.get("/health")
        floors["GET /health (middleware + routing only)"].append(
            (time.perf_counter() - started) * 1e6
        )
        started = time.perf_counter()
        check_rate(ident=f"bench-floor:{i}", per_minute=10**6)
        floors["check_rate (Redis INCR + EXPIRE, pipelined)"].append(
            (time.perf_counter() - started) * 1e6
        )
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(ONE_STATEMENT_PING, {"token": rest[i], "now": timezone.now()})
            cursor.fetchall()
        floors["the ping's writes as one raw SQL statement"].append(
            (time.perf_counter() - started) * 1e6
        )
    return statements, timings, totals, sql_totals, profiler, floors


# Not the app's logic (no threshold rules, listeners or cron deadlines): only what the
# database needs for a success ping, to bound what a leaner write path could cost.
ONE_STATEMENT_PING = """
WITH m AS (
    SELECT id, organization_id, consecutive_successes FROM monitors_monitor
    WHERE ping_token = %(token)s AND kind = 'heartbeat' FOR UPDATE
), p AS (
    INSERT INTO monitors_heartbeatping (monitor_id, organization_id, kind, received_at,
        remote_addr, user_agent, body)
    SELECT id, organization_id, 'success', %(now)s, '127.0.0.1', 'bench', '' FROM m
    RETURNING id
)
UPDATE monitors_monitor t SET last_ping_at = %(now)s, last_start_at = NULL,
    updated_at = %(now)s, next_check_at = %(now)s + interval '3900 seconds', status = 'up',
    consecutive_failures = 0, consecutive_successes = m.consecutive_successes + 1,
    last_checked_at = %(now)s, last_up_at = %(now)s
FROM m WHERE t.id = m.id RETURNING t.id
"""


def _short(sql: str) -> str:
    sql = " ".join(sql.split())
    if sql.startswith("SELECT"):
        table = sql.split(" FROM ", 1)[1].split()[0] if " FROM " in sql else ""
        lock = " FOR UPDATE" if "FOR UPDATE" in sql else ""
        return f"SELECT ... FROM {table}{lock}"
    return sql[:60]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--monitors", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--replay", type=int, default=500, help="in-process pings to analyse")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    setup_test_environment()
    connection.creation.create_test_db(keepdb=True, verbosity=0)
    tokens = prepare(args.monitors)
    database_name = connection.settings_dict["NAME"]
    connection.close()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_gunicorn(port, args.workers, database_name)
    try:
        asyncio.run(wait_ready(base))
        latencies, statuses, errors, span, used = asyncio.run(
            load(
                base,
                tokens,
                seconds=args.seconds,
                warmup=args.warmup,
                concurrency=args.concurrency,
                gunicorn_pid=server.pid,
                max_requests=args.max_requests,
            )
        )
    finally:
        server.terminate()
        try:
            _, err = server.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            _, err = server.communicate()
    ok = statuses.get("200", 0)
    total = sum(statuses.values()) + sum(errors.values())
    print(
        f"database {database_name}, gunicorn --workers {args.workers} (sync), "
        f"{len(tokens):,} heartbeat monitors, concurrency {args.concurrency}, "
        f"{span:.1f} s measured after {args.warmup:.0f} s warm-up, cores {os.cpu_count()}"
    )
    print(
        f"\nrequests/s {total / span:8.1f}   (200 OK: {ok / span:.1f}/s)\n"
        f"latency ms  p50 {pct(latencies, 0.5):.1f}   p99 {pct(latencies, 0.99):.1f}"
        f"   max {max(latencies) if latencies else float('nan'):.1f}\n"
        f"statuses    {dict(sorted(statuses.items()))}   errors {errors or 0}"
    )
    print("cores used  " + "  ".join(f"{k} {v:.2f}" for k, v in used.items()))
    print(
        f"\ntarget >= {TARGET_RPS} pings/s: {'MET' if ok / span >= TARGET_RPS else 'MISSED'}"
        f" ({ok / span / TARGET_RPS:.2f}x)"
    )
    if err and err.strip():
        print("\ngunicorn stderr (last lines):\n" + "\n".join(err.strip().splitlines()[-5:]))

    statements, timings, totals, sql_totals, profiler, floors = in_process(
        tokens, args.replay, args.profile
    )
    median_total = statistics.median(totals)
    print(
        f"\nOne ping in process (Django test client, {len(totals)} pings, no HTTP server): "
        f"median {median_total:.0f} us, of which SQL {statistics.median(sql_totals):.0f} us in "
        f"{len(statements)} queries (~{1e6 / median_total:.0f} pings/s for one busy process)"
    )
    for i, sql in enumerate(statements):
        print(f"  {statistics.median(timings[i]):7.0f} us  {_short(sql)}")
    print("Reference floors (same process):")
    for name, values in floors.items():
        print(f"  {statistics.median(values):7.0f} us  {name}")
    if profiler:
        print("\ncProfile of the in-process pings, by own time:")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
