#!/usr/bin/env python
"""Recording a batch of check results: today's engine's way against the check loop's, side by
side in one run, interleaved batch by batch so both see the same machine load.

* `batch` (the engine before the check loop, kept here as it was): `bulk_create` of the rows,
  `state.fold_outcomes` (the monitors re-read under `SELECT ... FOR UPDATE`, then one
  `UPDATE ... FROM (VALUES ...)`), usage metering, two metric updates per check.
* `cas` (`engine.results_record` now): one `INSERT ... SELECT FROM unnest(arrays)`, one
  compare-and-set `UPDATE ... FROM unnest(arrays)` (state.fold_checked), usage metering,
  metrics per batch.

Both fold the same outcomes into the same kind of monitors (HTTP, unpaused, up) in batches of
TASK_BATCH (200); listeners (incidents) are connected as in the product. Prints per batch the
median and p95 of the process CPU time and the wall time, the statements, the CPU the
PostgreSQL backend serving the benchmark spent per result (summed over the batches: the
kernel counts it in 10 ms ticks), and the ratio.

    DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/healthorch_bench \\
    CACHE_URL=redis://127.0.0.1:6379/1 LOG_LEVEL=WARNING \\
    .venv/bin/python benchmarks/recording.py [--batches 40] [--size 200]

Runs in the kept test database `test_<name>` (with benchmarks/checks.py's organization).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

ORG_SLUG = "bench-recording"


def record_batch_way(*, monitors, outcomes, region: str) -> None:
    """The recording of the engine before the check loop (commit 9b28938), single-region."""
    from apps.monitors.models import CheckResult
    from apps.monitors.state import fold_outcomes
    from apps.plans.models import UsageMetric
    from apps.plans.services import usage_add_many
    from healthorch import metrics

    checked_at = timezone.now()
    rows = [
        CheckResult(
            monitor_id=m.pk,
            organization_id=m.organization_id,
            checked_at=checked_at,
            region=region,
            round_at=None,
            outcome=o.outcome,
            response_time_ms=o.response_time_ms,
            status_code=o.status_code,
            error_class=o.error_class,
            error_message=o.error_message[:500],
            timings=o.timings,
            assertion_failures=o.assertion_failures,
            cert_expires_at=o.cert_expires_at,
        )
        for m, o in zip(monitors, outcomes, strict=True)
    ]
    per_org: Counter = Counter()
    for m, o in zip(monitors, outcomes, strict=True):
        per_org[m.organization_id] += 1
        metrics.monitor_checks_executed_total.labels(kind=m.kind, outcome=o.outcome).inc()
        if o.response_time_ms is not None:
            metrics.monitor_check_duration_seconds.observe(o.response_time_ms / 1000)
    with transaction.atomic():
        CheckResult.objects.bulk_create(rows, batch_size=1000)
        fold_outcomes(monitors=monitors, results=rows)
        usage_add_many(counts=[(org, UsageMetric.CHECKS_EXECUTED, n) for org, n in per_org.items()])


def prepare(n: int):
    from apps.monitors.models import CheckResult, Monitor, MonitorKind
    from apps.plans import services
    from apps.tenants.models import Organization

    services.plans_ensure_defaults()
    org, _ = Organization.objects.get_or_create(slug=ORG_SLUG, defaults={"name": "Bench rec"})
    existing = Monitor.objects.filter(organization=org).count()
    if existing < n:
        Monitor.objects.bulk_create(
            [
                Monitor(
                    organization=org,
                    name=f"rec {i}",
                    slug=f"rec-{i}",
                    kind=MonitorKind.HTTP,
                    config={"url": "http://127.0.0.1:9/"},
                    paused=True,
                )
                for i in range(existing, n)
            ],
            batch_size=2000,
        )
    Monitor.objects.filter(organization=org).update(
        paused=False, status="up", consecutive_failures=0, consecutive_successes=1
    )
    CheckResult.objects.filter(organization=org).delete()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE monitors_monitor")
    return org


CLK_TCK = os.sysconf("SC_CLK_TCK")


def backend_cpu_seconds() -> float:
    """CPU seconds so far of the PostgreSQL backend serving this connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40, help="batches per way")
    parser.add_argument("--size", type=int, default=200)
    args = parser.parse_args()

    from apps.monitors import engine
    from apps.monitors.checkers.base import CheckOutcome
    from apps.monitors.models import CheckResult, Monitor

    setup_test_environment()
    connection.creation.create_test_db(keepdb=True, verbosity=0)
    org = prepare(args.size * 4)
    ids = list(Monitor.objects.filter(organization=org).values_list("pk", flat=True))
    ways = {"batch": record_batch_way, "cas": engine.results_record}
    taken: dict[str, dict[str, list[float]]] = {w: {"cpu": [], "wall": []} for w in ways}
    statements: dict[str, int] = {}
    backend = dict.fromkeys(ways, 0.0)
    print(f"load before: {Path('/proc/loadavg').read_text().split()[:3]}")
    for i in range(args.batches * 2 + 2):
        way = "batch" if i % 2 == 0 else "cas"
        chunk = ids[(i // 2 % 4) * args.size :][: args.size]
        monitors = list(Monitor.objects.filter(pk__in=chunk).select_related(None))
        outcomes = [
            CheckOutcome(
                "up",
                response_time_ms=51.0,
                status_code=200,
                timings={"dns_ms": 0.1, "connect_ms": 0.3, "ttfb_ms": 50.2, "total_ms": 51.0},
            )
            for _ in monitors
        ]
        backend_before = backend_cpu_seconds()
        cpu, wall = time.process_time(), time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            ways[way](monitors=monitors, outcomes=outcomes, region="default")
        if i >= 2:  # the first of each warms caches
            backend[way] += backend_cpu_seconds() - backend_before
            taken[way]["cpu"].append((time.process_time() - cpu) * 1000)
            taken[way]["wall"].append((time.perf_counter() - wall) * 1000)
            statements[way] = len(queries.captured_queries)
    print(
        f"batches of {args.size} results, {args.batches} per way, interleaved\n"
        f"{'way':6} {'CPU ms p50':>10} {'p95':>7} {'wall ms p50':>11} {'p95':>7}"
        f" {'CPU us/result':>13} {'statements':>10} {'PostgreSQL CPU us/result':>24}"
    )
    for way, t in taken.items():
        print(
            f"{way:6} {statistics.median(t['cpu']):10.1f} {pct(t['cpu'], 0.95):7.1f}"
            f" {statistics.median(t['wall']):11.1f} {pct(t['wall'], 0.95):7.1f}"
            f" {statistics.median(t['cpu']) / args.size * 1000:13.0f} {statements[way]:10d}"
            f" {backend[way] / (args.batches * args.size) * 1e6:24.0f}"
        )
    old, new = taken["batch"], taken["cas"]
    print(
        f"ratio batch/cas: CPU {statistics.median(old['cpu']) / statistics.median(new['cpu']):.2f}x,"
        f" wall {statistics.median(old['wall']) / statistics.median(new['wall']):.2f}x"
    )
    print(f"load after: {Path('/proc/loadavg').read_text().split()[:3]}")
    Monitor.objects.filter(organization=org).update(paused=True)
    CheckResult.objects.filter(organization=org).delete()


if __name__ == "__main__":
    main()
