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
        [--workers 2] [--threads 4] [--profile]

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

from benchmarks.cpu import CLK_TCK  # noqa: E402
from benchmarks.cpu import children as _children  # noqa: E402
from benchmarks.cpu import pids_named as _pids_named  # noqa: E402
from benchmarks.cpu import proc_cpu as _proc_cpu  # noqa: E402

ORG_SLUG = "bench-pings"
TARGET_RPS = 900


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


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
    # A monitor's first ping moves it from `unknown` to `up`: a status change, which takes the
    # transactional reference path with the incident listeners. The figure is for a steady
    # stream of pings to monitors that are up, so every bench monitor gets its first ping here
    # (in process, untimed; only on a fresh database).
    from apps.monitors.models import MonitorStatus, PingKind
    from apps.monitors.pings import ping_accept

    fresh = Monitor.objects.filter(organization=org, kind=MonitorKind.HEARTBEAT).exclude(
        status=MonitorStatus.UP
    )
    for token in fresh.values_list("ping_token", flat=True):
        ping_accept(
            token=token,
            kind=PingKind.SUCCESS,
            exit_code=None,
            body=b"",
            remote_addr="127.0.0.1",
            user_agent="bench",
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


def start_gunicorn(
    port: int, workers: int, threads: int, database_name: str, debug: bool
) -> subprocess.Popen:
    db = settings.DATABASES["default"]
    url = (
        f"postgres://{db['USER']}{':' + db['PASSWORD'] if db.get('PASSWORD') else ''}"
        f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{database_name}"
    )
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CONN_MAX_AGE": "60",
        "DEBUG": "1" if debug else "0",
        # DEBUG=0 is production: it needs a key and hosts, and its https redirect is the TLS
        # proxy's business in front of gunicorn (plain http on loopback here).
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-only-" + "k" * 50,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
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
            # As docker/entrypoint.sh and the systemd unit run it (WEB_THREADS); 1 = sync.
            "--threads",
            str(threads),
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


WRK_SCRIPT = """
local tokens = {}
for line in io.lines(os.getenv("PING_TOKENS")) do tokens[#tokens + 1] = line end
local i = 0
local threads = {}
function setup(thread) threads[#threads + 1] = thread end
function init(args) bad = 0 end
function request()
  i = i + 1
  return wrk.format("GET", "/ping/" .. tokens[(i % #tokens) + 1])
end
function response(status, headers, body)
  if status ~= 200 then bad = bad + 1 end
end
function done(summary, latency, requests)
  local others = 0
  for _, t in ipairs(threads) do others = others + t:get("bad") end
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d not200=%d "
    .. "connect=%d read=%d write=%d timeout=%d status=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, others, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, summary.errors.status))
end
"""


def load_wrk(
    base: str,
    tokens: list[str],
    *,
    seconds: float,
    warmup: float,
    concurrency: int,
    gunicorn_pid: int,
):
    """Drive the server with wrk (one thread, `concurrency` connections): ~10x cheaper per
    request than the aiohttp client, so it leaves the cores to the server. Returns the same
    shape as `load`."""
    import resource
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        token_file = Path(tmp) / "tokens.txt"
        token_file.write_text("\n".join(tokens) + "\n")
        script = Path(tmp) / "ping.lua"
        script.write_text(WRK_SCRIPT)
        env = {**os.environ, "PING_TOKENS": str(token_file)}

        def run(duration: float) -> tuple[str, float]:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            out = subprocess.run(
                [
                    "wrk",
                    "-t1",
                    f"-c{concurrency}",
                    f"-d{max(1, round(duration))}s",
                    "--timeout",
                    "10s",
                    "-s",
                    str(script),
                    base,
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=duration + 60,
                check=True,
            ).stdout
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            return out, cpu

        if warmup > 0:
            run(warmup)
        start = cpu_snapshot(gunicorn_pid)
        out, wrk_cpu = run(seconds)
        end = cpu_snapshot(gunicorn_pid)
    line = next(ln for ln in out.splitlines() if ln.startswith("RESULT "))
    r = {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    span = r["duration_us"] / 1e6
    wall = end["wall"] - start["wall"]
    used = {
        k: (end[k] - start[k]) / wall for k in start if k not in ("wall", "idle", "load generator")
    }
    used["load generator"] = wrk_cpu / wall
    used["machine busy"] = (os.cpu_count() or 2) - (end["idle"] - start["idle"]) / wall
    errors = {k: r[k] for k in ("connect", "read", "write", "timeout") if r[k]}
    statuses = {"200": r["requests"] - r["not200"] - sum(errors.values())}
    if r["not200"]:
        statuses["other"] = r["not200"]
    summary = {"p50": r["p50_us"] / 1000, "p99": r["p99_us"] / 1000, "max": r["max_us"] / 1000}
    return summary, statuses, errors, span, used


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
    # Reference floors for one ping in this process: the framework alone, and the ping's
    # database work alone (apps.monitors.pings.ping_accept, no request around it).
    from apps.monitors.pings import ping_accept

    floors: dict[str, list[float]] = {"GET /health (middleware + routing only)": []}
    floors["ping_accept() alone (the ping's statement, no HTTP)"] = []
    rest = tokens[50 + rounds :] or tokens
    for i in range(min(rounds, len(rest))):
        started = time.perf_counter()
        client.get("/health")
        floors["GET /health (middleware + routing only)"].append(
            (time.perf_counter() - started) * 1e6
        )
        started = time.perf_counter()
        ping_accept(token=rest[i], kind="success", remote_addr="127.0.0.1", user_agent="bench")
        floors["ping_accept() alone (the ping's statement, no HTTP)"].append(
            (time.perf_counter() - started) * 1e6
        )
    return statements, timings, totals, sql_totals, profiler, floors


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
    parser.add_argument(
        "--threads", type=int, default=4, help="per worker (production default 4; 1 = sync)"
    )
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--replay", type=int, default=500, help="in-process pings to analyse")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--debug",
        type=int,
        choices=(0, 1),
        default=0,
        help="DEBUG of the gunicorn workers (0 = production, the default)",
    )
    parser.add_argument(
        "--client",
        choices=("auto", "wrk", "aiohttp"),
        default="auto",
        help="load generator: wrk when installed (auto), else the aiohttp client",
    )
    args = parser.parse_args()
    import shutil

    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "aiohttp"

    setup_test_environment()
    connection.creation.create_test_db(keepdb=True, verbosity=0)
    tokens = prepare(args.monitors)
    database_name = connection.settings_dict["NAME"]
    connection.close()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_gunicorn(port, args.workers, args.threads, database_name, bool(args.debug))
    try:
        asyncio.run(wait_ready(base))
        if client == "wrk":
            summary, statuses, errors, span, used = load_wrk(
                base,
                tokens,
                seconds=args.seconds,
                warmup=args.warmup,
                concurrency=args.concurrency,
                gunicorn_pid=server.pid,
            )
        else:
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
            summary = {
                "p50": pct(latencies, 0.5),
                "p99": pct(latencies, 0.99),
                "max": max(latencies) if latencies else float("nan"),
            }
    finally:
        server.terminate()
        try:
            _, err = server.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            _, err = server.communicate()
    ok = statuses.get("200", 0)
    total = sum(statuses.values()) + sum(errors.values())
    ours = sum(v for k, v in used.items() if k != "machine busy")
    used["others"] = max(0.0, used["machine busy"] - ours)
    print(
        f"database {database_name}, gunicorn --workers {args.workers} --threads {args.threads} "
        f"({'sync' if args.threads == 1 else 'gthread'}), "
        f"DEBUG={args.debug}, load generator {client}, "
        f"{len(tokens):,} heartbeat monitors, concurrency {args.concurrency}, "
        f"{span:.1f} s measured after {args.warmup:.0f} s warm-up, cores {os.cpu_count()}"
    )
    print(
        f"\nrequests/s {total / span:8.1f}   (200 OK: {ok / span:.1f}/s)\n"
        f"latency ms  p50 {summary['p50']:.1f}   p99 {summary['p99']:.1f}"
        f"   max {summary['max']:.1f}\n"
        f"statuses    {dict(sorted(statuses.items()))}   errors {errors or 0}"
    )
    print("cores used  " + "  ".join(f"{k} {v:.2f}" for k, v in used.items()))
    if ok:
        per = {k: used[k] / (ok / span) * 1000 for k in ("gunicorn", "postgres", "load generator")}
        print("CPU per ping ms  " + "  ".join(f"{k} {v:.2f}" for k, v in per.items()))
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
