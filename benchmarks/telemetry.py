#!/usr/bin/env python
"""Telemetry figures, in one run, on PostgreSQL:

1. Log ingestion over OTLP/HTTP protobuf into PostgreSQL through ONE gunicorn web process:
   a sync worker (`--threads 1`) and, for OTLP protobuf, the gthread worker as deployed
   (4 threads). Batches of `--batch` records (a message of ~90 characters, three attributes,
   a trace id), posted by `--concurrency` client threads for `--seconds`, gzip off and on;
   then the same lines as OTLP/JSON and as our JSON (`POST /api/v1/logs`, batches of 1,000)
   for the ratio. Prints lines/s, request latency (median, p95) and the CPU the worker,
   PostgreSQL and the load generator used. Target: >= 20,000 lines/s per web process
   (protobuf). With `--compare DIR` (a checkout of the previous code), first OTLP protobuf
   through a worker running that code and one running this code, alternately. Then one
   1,000-line batch in this process, the previous write path and the current one side by side.
2. A series query over 30 days of 1-minute samples (43,200 rows in the series, among
   `--series` such series of the organization, written with COPY once and kept): the selector
   and the whole API request (Django test client), median and p95 of 20 runs, per step.
   Target: < 200 ms.
3. Log search: `--lines` log lines of one organization over the last 10 days (one day
   partition each; kept between runs, grown set-based with `INSERT ... SELECT
   generate_series`, a tenth as many to another organization), first page (100) of
   `GET /api/v1/logs?q=` for rare, 1-in-1,000 and common words, with a source, a level or a
   time window, and without a word, then the next page through the cursor; median and p95 of
   15 runs each, through the test client. Target: < 500 ms at 10 million lines.

    DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/healthorch_bench \\
    CACHE_URL=redis://127.0.0.1:6379/1 LOG_LEVEL=WARNING \\
    .venv/bin/python benchmarks/telemetry.py [--seconds 15] [--concurrency 3] [--batch 1000]
        [--series 20] [--lines 1000000] [--skip ingest,series,search] [--compare DIR]

Runs in the kept test database `test_<name>`. The machine's load (/proc/loadavg) is printed
before and after each part.
"""

# SQL here is built from model table names and constants; values always go as parameters.

from __future__ import annotations

import argparse
import base64
import gzip
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2  # noqa: E402
from opentelemetry.proto.common.v1 import common_pb2  # noqa: E402
from opentelemetry.proto.logs.v1 import logs_pb2  # noqa: E402
from opentelemetry.proto.resource.v1 import resource_pb2  # noqa: E402

from benchmarks.cpu import children, pids_named, proc_cpu  # noqa: E402

ORG_SLUG, OTHER_SLUG = "bench-telemetry", "bench-telemetry-other"
WORDS = [
    "request",
    "served",
    "user",
    "order",
    "payment",
    "cache",
    "session",
    "queue",
    "worker",
    "job",
    "retry",
    "upstream",
    "connection",
    "database",
    "query",
    "timeout",
    "refused",
    "latency",
    "slow",
    "degraded",
    "started",
    "stopped",
    "invoice",
    "checkout",
    "cart",
    "inventory",
    "shipment",
    "token",
    "login",
    "logout",
    "webhook",
    "signature",
]
RARE = "zebracorn"
#: days the search benchmark's lines are spread over (one partition each on PostgreSQL)
DAYS = 10
#: a word in one line of 1,000: too many for a page of GIN matches to be cheap, too few for
#: the newest-first index to fill a page quickly
MIDDLING = "quokka"


def load() -> str:
    return Path("/proc/loadavg").read_text().strip()


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def message(rng: random.Random, i: int) -> str:
    words = " ".join(rng.choice(WORDS) for _ in range(8))
    return f"{words} id={i} took {rng.randint(1, 900)} ms"


# --- 1. ingestion ----------------------------------------------------------------------------


def export_request(n: int, seed: int) -> logs_service_pb2.ExportLogsServiceRequest:
    rng = random.Random(seed)
    now = time.time_ns()
    records = [
        logs_pb2.LogRecord(
            time_unix_nano=now - i * 1000,
            severity_number=rng.choice((9, 9, 9, 13, 17)),
            body=common_pb2.AnyValue(string_value=message(rng, i)),
            attributes=[
                common_pb2.KeyValue(
                    key="http.route", value=common_pb2.AnyValue(string_value="/api/orders")
                ),
                common_pb2.KeyValue(
                    key="http.status_code", value=common_pb2.AnyValue(int_value=200)
                ),
                common_pb2.KeyValue(key="user.id", value=common_pb2.AnyValue(int_value=i)),
            ],
            trace_id=rng.randbytes(16),
            span_id=rng.randbytes(8),
        )
        for i in range(n)
    ]
    return logs_service_pb2.ExportLogsServiceRequest(
        resource_logs=[
            logs_pb2.ResourceLogs(
                resource=resource_pb2.Resource(
                    attributes=[
                        common_pb2.KeyValue(
                            key="service.name", value=common_pb2.AnyValue(string_value="checkout")
                        )
                    ]
                ),
                scope_logs=[logs_pb2.ScopeLogs(log_records=records)],
            )
        ]
    )


def start_gunicorn(
    port: int, database_name: str, threads: int = 1, code: Path = ROOT
) -> subprocess.Popen:
    db = settings.DATABASES["default"]
    url = (
        f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{database_name}"
    )
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CONN_MAX_AGE": "60",
        "DEBUG": "1",
        "LOG_LEVEL": "WARNING",
        "CACHE_URL": os.environ.get("CACHE_URL", "redis://127.0.0.1:6379/1"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "healthorch.wsgi:application",
            "--workers=1",
            f"--threads={threads}",  # more than 1: a gthread worker, as deployed
            f"--bind=127.0.0.1:{port}",
            "--no-control-socket",
            "--timeout=120",
            "--log-level=warning",
        ],
        cwd=code,  # the checkout whose code the worker runs
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def drive(url: str, body: bytes, headers: dict, lines: int, seconds: float, concurrency: int):
    """Post `body` from `concurrency` threads for `seconds`; (lines/s, latencies, statuses)."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker() -> None:
        session = requests.Session()
        while time.monotonic() < stop:
            started = time.perf_counter()
            response = session.post(url, data=body, headers=headers, timeout=120)
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                if response.status_code not in (200, 202) and not statuses.get(-1):
                    statuses[-1] = 1  # print the first refusal once, to say why
                    print(f"  {response.status_code}: {response.content[:200]!r}")
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started
    ok = sum(n for code, n in statuses.items() if code in (200, 202))
    return ok * lines / wall, latencies, statuses


def bench_ingest(org, key: str, args, database_name: str) -> None:
    print(f"\n== 1. log ingestion, one gunicorn web process  (load {load()})")
    request = export_request(args.batch, seed=1)
    proto = request.SerializeToString()
    document = json_format.MessageToDict(request)
    for record in document["resourceLogs"][0]["scopeLogs"][0]["logRecords"]:
        for field in ("traceId", "spanId"):  # OTLP/JSON writes ids as hex, not base64
            record[field] = base64.b64decode(record[field]).hex()
    as_json = json.dumps(document).encode()
    ours = json.dumps(
        {
            "logs": [
                {
                    "source": "checkout",
                    "level": "info",
                    "message": r.body.string_value,
                    "attributes": {"http.route": "/api/orders", "user.id": i},
                }
                for i, r in enumerate(request.resource_logs[0].scope_logs[0].log_records[:1000])
            ]
        }
    ).encode()
    cases = [
        (
            "OTLP protobuf",
            "/v1/logs",
            proto,
            {"Content-Type": "application/x-protobuf"},
            args.batch,
            1,
        ),
        (
            "OTLP protobuf, gzip",
            "/v1/logs",
            gzip.compress(proto),
            {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
            args.batch,
            1,
        ),
        ("OTLP JSON", "/v1/logs", as_json, {"Content-Type": "application/json"}, args.batch, 1),
        (
            "our JSON /api/v1/logs",
            "/api/v1/logs",
            ours,
            {"Content-Type": "application/json"},
            min(args.batch, 1000),
            1,
        ),
        # The worker as docker/entrypoint.sh runs it (gthread, 4 threads): one process that
        # shapes a batch while PostgreSQL writes another; twice the client threads.
        (
            "OTLP protobuf, 4 threads",
            "/v1/logs",
            proto,
            {"Content-Type": "application/x-protobuf"},
            args.batch,
            4,
        ),
    ]
    print(
        f"{'body':24} {'bytes':>9} {'lines/s':>9} {'/worker CPU-s':>12} {'req p50':>8} {'req p95':>8} "
        f"{'worker cpu':>10} {'postgres':>9} {'others':>7}  statuses"
    )
    results = {}
    for threads in (1, 4):
        _ingest_cases(
            [c for c in cases if c[5] == threads], threads, key, args, database_name, results
        )
    base_rate, base_cpu = results["OTLP protobuf"]
    print(
        "ratios to OTLP protobuf (lines/s; lines per worker CPU-second): "
        + ", ".join(
            f"{k} {v[0] / base_rate:.2f}x, {v[1] / base_cpu:.2f}x" for k, v in results.items()
        )
    )
    print(f"(load {load()})")
    breakdown(org, proto)


def compare_ingest(key: str, args, database_name: str) -> None:
    """OTLP protobuf through one sync worker running the previous code (`--compare`), then one
    running this code, alternately (2 rounds of `--seconds` each), against the same database
    (its current schema): the load of the machine moves both the same way."""
    from benchmarks.pings import free_port

    print(f"\n== 1a. previous code against this one, OTLP protobuf  (load {load()})")
    body = export_request(args.batch, seed=1).SerializeToString()
    headers = {"Content-Type": "application/x-protobuf", "X-API-Key": key}
    rates: dict[str, list[float]] = {"previous": [], "current": []}
    for _ in range(2):
        for name, code in (("previous", args.compare.resolve()), ("current", ROOT)):
            port = free_port()
            proc = start_gunicorn(port, database_name, 1, code)
            base = f"http://127.0.0.1:{port}"
            try:
                for _ in range(240):
                    try:
                        if requests.get(f"{base}/live", timeout=2).ok:
                            break
                    except requests.RequestException:
                        time.sleep(0.25)
                drive(base + "/v1/logs", body, headers, args.batch, 2, args.concurrency)
                rate, latencies, statuses = drive(
                    base + "/v1/logs", body, headers, args.batch, args.seconds, args.concurrency
                )
            finally:
                proc.terminate()
                proc.wait(timeout=30)
            rates[name].append(rate)
            print(
                f"  {name:9} {rate:>9,.0f} lines/s, request p50 "
                f"{statistics.median(latencies) * 1000:.0f} ms  {statuses}  (load {load()})"
            )
    previous, current = (statistics.mean(rates[k]) for k in ("previous", "current"))
    print(
        f"  mean of 2 rounds: previous {previous:,.0f}, current {current:,.0f} lines/s "
        f"({current / previous:.2f}x)"
    )


def _ingest_cases(cases, threads: int, key: str, args, database_name: str, results) -> None:
    from benchmarks.pings import free_port

    port = free_port()
    proc = start_gunicorn(port, database_name, threads)
    base = f"http://127.0.0.1:{port}"
    concurrency = args.concurrency * (2 if threads > 1 else 1)
    try:
        for _ in range(240):
            try:
                if requests.get(f"{base}/live", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.25)
        for name, path, body, headers, lines, _threads in cases:
            headers = {**headers, "X-API-Key": key}
            drive(base + path, body, headers, lines, 2, concurrency)  # warm up
            worker_pids = [proc.pid, *children(proc.pid)]
            # PostgreSQL backends come and go: count only those alive at both ends.
            pg0 = {pid: proc_cpu(pid) for pid in pids_named("postgres")}
            cpu0 = (sum(map(proc_cpu, worker_pids)), _busy())
            t0 = time.monotonic()
            rate, latencies, statuses = drive(
                base + path, body, headers, lines, args.seconds, concurrency
            )
            wall = time.monotonic() - t0
            cpu1 = (sum(map(proc_cpu, worker_pids)), _busy())
            pg_used = sum(
                max(0.0, proc_cpu(pid) - before)
                for pid, before in pg0.items()
                if Path(f"/proc/{pid}").exists()
            )
            worker_s = cpu1[0] - cpu0[0]
            worker_cpu, pg_cpu = worker_s / wall, pg_used / wall
            others = (cpu1[1] - cpu0[1]) / wall - worker_cpu - pg_cpu
            stored = rate * wall
            # Lines per CPU-second of the worker: what one web process would take with a
            # whole core to itself (the figure the machine's load moves least).
            per_cpu = stored / worker_s if worker_s else float("nan")
            results[name] = (rate, per_cpu)
            print(
                f"{name:24} {len(body):>9} {rate:>9,.0f} {per_cpu:>12,.0f} "
                f"{statistics.median(latencies) * 1000:>6.0f}ms "
                f"{pct(latencies, 0.95) * 1000:>6.0f}ms {worker_cpu:>9.0%} {pg_cpu:>9.0%} "
                f"{others:>7.1f}  {statuses}"
            )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _busy() -> float:
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = [int(f) for f in fields]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def breakdown(org, proto: bytes) -> None:
    """One batch in this process, the previous path and the current one side by side
    (interleaved, 15 rounds each, each batch committed): wall time and this process's CPU."""
    from django.db import transaction

    from apps.telemetry import otlp
    from apps.telemetry.storage import logs_write

    def previous() -> None:
        # The path before the streamed COPY: every row shaped into a list first (attributes
        # through the generic AnyValue conversion), then COPY value by value through
        # psycopg's adapters, a JSON encoder made per row.
        message = otlp.parse_logs(proto, otlp.PROTOBUF)
        generic = otlp.attributes
        otlp.attributes = lambda pairs: {kv.key: otlp.any_value(kv.value) for kv in pairs}
        try:
            rows = otlp.log_rows(message, now=datetime.now(UTC)).rows
        finally:
            otlp.attributes = generic
        columns = "organization_id, ts, source, level, message, attributes, trace_id, span_id"
        with (
            transaction.atomic(),
            connection.cursor() as cursor,
            cursor.copy(f"COPY telemetry_logline ({columns}) FROM STDIN") as copy,
        ):
            for ts, source, level, text, attrs, trace_id, span_id in rows:
                attrs = json.dumps(attrs, separators=(",", ":"), ensure_ascii=False)
                copy.write_row((org.pk, ts, source, level, text, attrs, trace_id, span_id))

    def current() -> None:
        message = otlp.parse_logs(proto, otlp.PROTOBUF)
        rows = otlp.iter_log_rows(message, now=datetime.now(UTC), out=otlp.Decoded())
        with transaction.atomic():
            logs_write(org_id=org.pk, rows=rows)

    timings: dict[str, tuple[list, list]] = {"previous": ([], []), "current": ([], [])}
    for _ in range(15):
        for name, path in (("previous", previous), ("current", current)):
            t0, c0 = time.perf_counter(), time.thread_time()
            path()
            timings[name][0].append(time.perf_counter() - t0)
            timings[name][1].append(time.thread_time() - c0)
    n = len(otlp.parse_logs(proto, otlp.PROTOBUF).resource_logs[0].scope_logs[0].log_records)
    print(f"one batch of {n} in process, decode + shape + COPY + commit (median of 15):")
    for name, (wall, cpu) in timings.items():
        print(
            f"  {name:9} {statistics.median(wall) * 1000:6.1f} ms wall "
            f"({n / statistics.median(wall):,.0f} lines/s), "
            f"{statistics.median(cpu) * 1000:5.1f} ms CPU in this process"
        )
    ratio = statistics.median(timings["previous"][0]) / statistics.median(timings["current"][0])
    print(f"  current path {ratio:.2f}x the previous one's rate (load {load()})")


# --- 2. series -------------------------------------------------------------------------------


def bench_series(org, key: str, args) -> None:
    from apps.monitors.models import MetricSample
    from apps.telemetry import selectors

    print(f"\n== 2. series query, 30 days of 1-minute samples  (load {load()})")
    end = datetime(2026, 11, 1, tzinfo=UTC)
    start = end - timedelta(days=30)
    per_series = 30 * 24 * 60
    have = MetricSample.objects.filter(organization=org, source__startswith="host-").count()
    want = per_series * args.series
    if have < want:
        MetricSample.objects.filter(organization=org, source__startswith="host-").delete()
        t0 = time.monotonic()
        rng = random.Random(2)
        table = MetricSample._meta.db_table
        with connection.cursor() as cursor:
            with cursor.copy(
                f"COPY {table} (organization_id, source, name, value, ts) FROM STDIN"
            ) as copy:
                for s in range(args.series):
                    for m in range(per_series):
                        copy.write_row(
                            (
                                org.pk,
                                f"host-{s}",
                                "cpu",
                                rng.gauss(50, 15),
                                start + timedelta(minutes=m),
                            )
                        )
            cursor.execute(f"ANALYZE {table}")
        print(f"wrote {want:,} samples with COPY in {time.monotonic() - t0:.1f} s")
    print(f"{MetricSample.objects.filter(organization=org).count():,} samples in the organization")
    client = Client()
    print(f"{'step':>6} {'points':>7} {'selector p50':>13} {'p95':>7} {'API p50':>9} {'p95':>7}")
    for step in (86400, 3600, 1800, 1440):
        sel, api = [], []
        for _ in range(20):
            t0 = time.perf_counter()
            points = selectors.metric_series(
                org=org, source="host-3", name="cpu", since=start, until=end, step=step
            )
            sel.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            response = client.get(
                "/api/v1/metrics/series",
                {
                    "source": "host-3",
                    "name": "cpu",
                    "since": start.isoformat(),
                    "until": end.isoformat(),
                    "step": step,
                },
                HTTP_X_API_KEY=key,
            )
            api.append(time.perf_counter() - t0)
            assert response.status_code == 200, response.content
        print(
            f"{step:>6} {len(points):>7} {statistics.median(sel) * 1000:>11.1f}ms "
            f"{pct(sel, 0.95) * 1000:>5.1f}ms {statistics.median(api) * 1000:>7.1f}ms "
            f"{pct(api, 0.95) * 1000:>5.1f}ms"
        )
    print(f"(load {load()})")


# --- 3. search -------------------------------------------------------------------------------


def grow_logs(org, other, lines: int) -> None:
    """Grow the organization's lines to `lines` (and the other's by a tenth as many) with
    set-based `INSERT ... SELECT generate_series`, one statement per day of lines: the
    database writes them without a round trip per row. Lines are spread evenly over the
    `DAYS` days before now (about a million a day at 10 million), so on PostgreSQL they fill
    that many day partitions, made first as beat would."""
    from apps.telemetry import services
    from apps.telemetry.models import LogLine

    have = LogLine.objects.filter(organization=org).count()
    if have >= lines:
        return
    t0 = time.monotonic()
    now = datetime.now(UTC).replace(microsecond=0)
    first = now - timedelta(days=DAYS)
    for n in range(DAYS + 2):
        services.log_partitions_ensure(now=first + timedelta(days=n))
    spacing = DAYS * 86400 / lines  # seconds between two lines of the organization
    words = "ARRAY[" + ",".join(f"'{w}'" for w in WORDS) + "]"
    # Line k: 8 words of the vocabulary picked by hashing k (so a word is in about a quarter
    # of the lines), the rare word in one line of 100,000, 20 sources, 70% info.
    text = " || ' ' || ".join(
        f"(w)[1 + mod(abs(hashint4((k * 8 + {i})::int)), {len(WORDS)})]" for i in range(8)
    )
    insert = f"""
        INSERT INTO telemetry_logline
            (organization_id, ts, source, level, message, attributes, trace_id, span_id)
        SELECT %s, %s::timestamptz + make_interval(secs => k * %s),
               'svc-' || mod(abs(hashint4(k::int)), 20),
               (ARRAY['info','info','info','info','info','info','info','debug','warn','error'])
                   [1 + mod(abs(hashint4((k + 1)::int)), 10)],
               {text} || ' id=' || k || ' took '
                   || (1 + mod(abs(hashint4((k + 2)::int)), 900)) || ' ms'
                   || CASE WHEN mod(k, 100000) = 7 THEN ' {RARE}' ELSE '' END
                   || CASE WHEN mod(k, 1000) = 3 THEN ' {MIDDLING}' ELSE '' END,
               jsonb_build_object('k', k), '', ''
        FROM generate_series(%s::bigint, %s::bigint) AS k, (SELECT {words} AS w) AS vocabulary
        WHERE mod(k, %s) = 0
    """  # noqa: S608 (constants of this script only; values are parameters)
    per_day = max(1, lines // DAYS)
    with connection.cursor() as cursor:
        for start in range(have, lines, per_day):
            stop = min(lines, start + per_day) - 1
            t1 = time.monotonic()
            cursor.execute(insert, [org.pk, first, spacing, start, stop, 1])
            cursor.execute(insert, [other.pk, first, spacing, start, stop, 10])
            print(
                f"  {stop + 1:,} lines (+{(stop + 1 - start) * 1.1:,.0f} in "
                f"{time.monotonic() - t1:.0f} s; load {load()})",
                flush=True,
            )
        cursor.execute("VACUUM ANALYZE telemetry_logline")
        cursor.execute("SELECT pg_size_pretty(pg_total_relation_size('telemetry_logline'))")
        parent = cursor.fetchone()[0]
        cursor.execute(
            "SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits "
            "WHERE inhparent = 'telemetry_logline'::regclass"
        )
        size = cursor.fetchone()[0] or parent
    print(f"grew the log table to {lines:,} lines in {time.monotonic() - t0:.0f} s ({size})")


def bench_search(org, other, key: str, args) -> None:
    from apps.telemetry.models import LogLine

    print(f"\n== 3. log search  (load {load()})")
    grow_logs(org, other, args.lines)
    total = LogLine.objects.count()
    mine = LogLine.objects.filter(organization=org).count()
    print(f"{mine:,} lines in the organization, {total:,} in the table")
    client = Client()
    now = datetime.now(UTC)
    cases = {
        f"rare word ({RARE})": {"q": RARE},
        f"1-in-1,000 word ({MIDDLING})": {"q": MIDDLING},
        "common word (timeout)": {"q": "timeout"},
        "two words": {"q": "payment timeout"},
        "word + source": {"q": "refused", "source": "svc-3"},
        "word + level": {"q": "degraded", "level": "error"},
        "1-in-1,000 word + source": {"q": MIDDLING, "source": "svc-3"},
        "no word (latest page)": {},
        "source only": {"source": "svc-7"},
        "level only (error)": {"level": "error"},
        "word, last hour": {"q": "webhook", "since": (now - timedelta(hours=1)).isoformat()},
        "word, one hour 5 days ago": {
            "q": "webhook",
            "since": (now - timedelta(days=5, hours=1)).isoformat(),
            "until": (now - timedelta(days=5)).isoformat(),
        },
        f"{MIDDLING}, one day 5 days ago": {
            "q": MIDDLING,
            "since": (now - timedelta(days=6)).isoformat(),
            "until": (now - timedelta(days=5)).isoformat(),
        },
    }
    print(f"{'query':32} {'rows':>5} {'p50':>8} {'p95':>8}  {'page 2 p50':>8} {'p95':>8}")
    for name, params in cases.items():
        times = []
        for _ in range(15):
            t0 = time.perf_counter()
            response = client.get("/api/v1/logs", {**params, "page_size": 100}, HTTP_X_API_KEY=key)
            times.append(time.perf_counter() - t0)
            assert response.status_code == 200, response.content
        page = response.json()
        rows = len(page["results"])
        # The next page through the cursor (when there is one): a keyset read from where the
        # first page ended, possibly in an older partition.
        following = []
        for _ in range(15 if page["next"] else 0):
            t0 = time.perf_counter()
            response = client.get(page["next"], HTTP_X_API_KEY=key)
            following.append(time.perf_counter() - t0)
            assert response.status_code == 200, response.content
        nxt = (
            f"{statistics.median(following) * 1000:>6.1f}ms {pct(following, 0.95) * 1000:>6.1f}ms"
            if following
            else f"{'-':>8} {'-':>8}"
        )
        print(
            f"{name:32} {rows:>5} {statistics.median(times) * 1000:>6.1f}ms "
            f"{pct(times, 0.95) * 1000:>6.1f}ms  {nxt}"
        )
    print(f"(load {load()})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--concurrency", type=int, default=3)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--skip", default="")
    parser.add_argument(
        "--compare",
        type=Path,
        help="a checkout of the previous code (e.g. `git archive <commit> | tar -x -C DIR`): "
        "OTLP protobuf ingestion through it and through this one, alternately, in this run",
    )
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if connection.vendor != "postgresql":
        raise SystemExit("set DATABASE_URL to PostgreSQL")

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["*"]
    # serialize=False: the kept database holds millions of rows that nothing here restores.
    connection.creation.create_test_db(keepdb=True, verbosity=0, serialize=False)
    database_name = connection.settings_dict["NAME"]

    from apps.plans import services as plans
    from apps.tenants.models import Organization
    from apps.tenants.services import api_key_create

    plans.plans_ensure_defaults()
    org, _ = Organization.objects.get_or_create(slug=ORG_SLUG, defaults={"name": "Bench telemetry"})
    other, _ = Organization.objects.get_or_create(slug=OTHER_SLUG, defaults={"name": "Other"})
    for o in (org, other):
        plans.organization_change_plan(org=o, plan_code="enterprise", source="benchmark")
    key = api_key_create(org=org, name="bench", scopes=["read", "write"]).secret
    print(f"database {database_name}; {os.cpu_count()} cores; load {load()}")

    if "ingest" not in skip:
        if args.compare:
            compare_ingest(key, args, database_name)
        bench_ingest(org, key, args, database_name)
    if "series" not in skip:
        bench_series(org, key, args)
    if "search" not in skip:
        bench_search(org, other, key, args)


if __name__ == "__main__":
    main()
