#!/usr/bin/env python
"""The data path at 100,000 monitors: dispatch claims, hourly rollups, retention of a day.

Each figure is printed beside the way it was done before, measured in the same run:

1. **dispatch**: `engine.claim_due(limit=5000)` over 100,000 scheduled monitors (the bench
   organization of benchmarks/dispatch.py, made on first use), 5,000 of them due each round,
   vacuumed before each round (autovacuum is off on these machines). The previous claim (the
   locked rows found again through the primary key, the rows turned into Claimed tuples in
   two passes) and today's (by ctid, one pass) alternate round by round, so both see the
   same machine. Goal: median < 50 ms, p95 < 80 ms.
2. **rollups**: one hour of raw results (`--monitors` x 60, one a minute) inserted by the
   database itself, then rolled up by the row-by-row fold (`rollup_hour_by_rows`, before) and
   by the set-based statements (`rollup_hour`, now), alternating. Raw rows per second of wall
   time, and per CPU-second of the PostgreSQL backend doing the work (what one core does
   when the machine is not shared; the kernel counts it in 10 ms ticks).
   `--no-row-by-row` times the set-based statements alone (the fold takes minutes at 1M rows).
   Goal: >= 200,000 rows/s.
3. **retention**: three day partitions of `--day-rows` results each (far in the future, so
   nothing real is touched). Before: deleting a day by the bounded row batches retention ran
   until now. Now: `DROP TABLE` of the day's partition. And the per-plan sweep: a day whose
   rows are half a short-retention organization's, deleted by `retention.sweep_partition`,
   with the table's size before and after (the price of the sweep: dead rows stay until the
   partition drops). Goal: a day (144 million rows at 100,000 monitors a minute) in < 1 s;
   the drop does not depend on the rows, the deletes are reported as rows/s and extrapolated.

PostgreSQL only; runs in the kept test database `test_<name>` (partitioned by its migrations).

    DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/healthorch_bench \\
    CACHE_URL=redis://127.0.0.1:6379/1 LOG_LEVEL=WARNING \\
    .venv/bin/python benchmarks/partitions.py [--rounds 20] [--monitors 5000] [--day-rows 500000]

Prints /proc/loadavg before and after: the machine is shared, compare the ratios.
"""

# SQL here is built from model table names and constants; values always go as parameters.
# ruff: noqa: S608

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

# The claim as it was before this change: the locked rows joined back by primary key.
PREVIOUS_CLAIM_SQL = """
WITH due AS (
    SELECT monitor_id, next_check_at AS due_at, interval_seconds, regions
    FROM monitors_monitorschedule
    WHERE lane = 'check' AND next_check_at <= %(now)s
    ORDER BY next_check_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE monitors_monitorschedule AS s
SET next_check_at = due.due_at + due.interval_seconds * interval '1 second' * (1 + floor(
    extract(epoch FROM %(now)s - due.due_at) / due.interval_seconds
))
FROM due
WHERE s.monitor_id = due.monitor_id
RETURNING s.monitor_id::text, due.regions::text,
    (extract(epoch FROM due.due_at) * 1000000)::bigint, due.interval_seconds
"""
RESULTS = "monitors_checkresult"


def previous_claim_due(limit: int) -> list:
    """`engine.claim_due` on PostgreSQL as it was before: the statement above, its rows
    decoded in one pass and the Claimed tuples built in another, by datetime arithmetic."""
    import json

    from django.utils import timezone

    from apps.core.pauses import gc_held
    from apps.monitors.engine import _CLAIM_SETTINGS, Claimed

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    now = timezone.now()
    with gc_held():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_CLAIM_SETTINGS + PREVIOUS_CLAIM_SQL, {"now": now, "limit": limit})
            while cursor.description is None and cursor.nextset():
                pass
            rows = cursor.fetchall()
        rows.sort(key=lambda r: r[2])
        decoded: dict[str, list[str]] = {}
        rows = [
            (
                pk,
                decoded.get(regions) or decoded.setdefault(regions, json.loads(regions)),
                epoch + timedelta(microseconds=due_us),
                interval,
            )
            for pk, regions, due_us, interval in rows
        ]
        return [
            Claimed(
                str(pk),
                list(regions or ["default"]),
                lag := (now - due).total_seconds(),
                due,
                lag < interval,
            )
            for pk, regions, due, interval in rows
        ]


FAR_DAY = date(2032, 1, 5)


CLK_TCK = os.sysconf("SC_CLK_TCK")


def backend_cpu_seconds() -> float:
    """CPU seconds so far of the PostgreSQL backend serving this connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_org():
    """The 100,000 monitors of benchmarks/dispatch.py (made there on first use)."""
    from benchmarks.dispatch import prepare

    return prepare(100_000)


# --- 1. dispatch -------------------------------------------------------------------------------


def dispatch(org, rounds: int) -> dict[str, list[float]]:
    from apps.monitors import engine
    from apps.monitors.models import Monitor

    table = "monitors_monitorschedule"
    ids = list(Monitor.objects.filter(organization=org).values_list("pk", flat=True))
    due_ids = random.Random(42).sample(ids, 5000)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET interval_seconds = 300, lane = 'check', "
            f"next_check_at = now() + interval '1 day' + random() * interval '1 day' "
            f"WHERE monitor_id IN (SELECT id FROM monitors_monitor WHERE organization_id = %s)",
            [org.pk],
        )
        cursor.execute(f"VACUUM ANALYZE {table}")

    def make_due() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET next_check_at = now() - (1 + random() * 59) * "
                f"interval '1 second' WHERE monitor_id = ANY(%s)",
                [due_ids],
            )
            cursor.execute(f"VACUUM {table}")

    variants = {
        "before (primary-key join, 2 passes)": lambda: previous_claim_due(5000),
        "now (ctid join, 1 pass)": lambda: engine.claim_due(limit=5000),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for n in range(rounds + 1):
            for name, claim in variants.items():
                make_due()
                started = time.perf_counter()
                claimed = claim()
                if n:  # the first round warms caches
                    times[name].append((time.perf_counter() - started) * 1000)
                assert len(claimed) == 5000, len(claimed)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET next_check_at = now() + interval '1 day' "
                f"WHERE monitor_id = ANY(%s)",
                [due_ids],
            )
    return times


# --- 2. rollups --------------------------------------------------------------------------------


_FILL_SQL = f"""
INSERT INTO {RESULTS} (monitor_id, organization_id, checked_at, region, outcome,
    response_time_ms, status_code, error_class, error_message, timings, assertion_failures)
SELECT m.id, m.organization_id, %(start)s + (i * 60 + random() * 59) * interval '1 second',
    'default', o.outcome,
    CASE WHEN o.outcome IN ('up', 'degraded') THEN m.base * (0.8 + random() * 0.4)
        * CASE WHEN random() < 0.02 THEN 5 ELSE 1 END END,
    CASE WHEN o.outcome = 'up' THEN 200 ELSE 503 END,
    CASE WHEN o.outcome = 'down' THEN 'http_status' ELSE '' END,
    CASE WHEN o.outcome = 'down' THEN 'answered 503' ELSE '' END, '{{}}', '[]'
FROM (SELECT id, organization_id, 20 + abs(hashtext(id::text)) %% 480 AS base
      FROM monitors_monitor WHERE organization_id = %(org)s ORDER BY id LIMIT %(monitors)s) m
CROSS JOIN generate_series(0, %(per_monitor)s - 1) AS i
CROSS JOIN LATERAL (
    SELECT CASE WHEN r < 0.97 THEN 'up' WHEN r < 0.985 THEN 'degraded' ELSE 'down' END AS outcome
    FROM (SELECT random() + i * 0 AS r) AS draw
) AS o
"""


def fill(org, start: datetime, monitors: int, per_monitor: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            _FILL_SQL,
            {"start": start, "org": org.pk, "monitors": monitors, "per_monitor": per_monitor},
        )
        return cursor.rowcount


def rollups_bench(
    org, monitors: int, rounds: int, *, row_by_row: bool = True
) -> tuple[int, dict[str, list[float]], dict[str, float]]:
    from apps.monitors import rollups
    from apps.monitors.models import ErrorRollup, ResultRollup

    hour = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {RESULTS} WHERE checked_at >= %s AND checked_at < %s",
            [hour, hour + timedelta(hours=1)],
        )
    rows = fill(org, hour, monitors, 60)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {RESULTS}")
    variants = {
        "before (row-by-row fold in Python)": rollups.rollup_hour_by_rows,
        "now (set-based statements)": rollups.rollup_hour,
    }
    if not row_by_row:
        del variants["before (row-by-row fold in Python)"]
    times: dict[str, list[float]] = {name: [] for name in variants}
    backend = dict.fromkeys(variants, 0.0)
    try:
        for _ in range(rounds):
            for name, run in variants.items():
                backend_before = backend_cpu_seconds()
                started = time.perf_counter()
                done = run(hour)
                times[name].append(time.perf_counter() - started)
                backend[name] += backend_cpu_seconds() - backend_before
                assert done == monitors, (done, monitors)
    finally:
        ResultRollup.objects.filter(organization=org, bucket_start=hour).delete()
        ErrorRollup.objects.filter(organization=org, bucket_start=hour).delete()
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {RESULTS} WHERE checked_at >= %s AND checked_at < %s",
                [hour, hour + timedelta(hours=1)],
            )
    return rows, times, {name: cpu / rounds for name, cpu in backend.items()}


# --- 3. retention ------------------------------------------------------------------------------


def _size(name: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_total_relation_size(%s)", [name])
        return cursor.fetchone()[0]


def retention_bench(org, day_rows: int) -> dict[str, float]:
    from apps.core import partitions
    from apps.monitors import retention
    from apps.monitors.models import CheckResult, Monitor
    from apps.plans.services import organization_change_plan
    from apps.tenants.models import Organization

    short, _ = Organization.objects.get_or_create(
        slug="bench-retention-free", defaults={"name": "Bench retention (free)"}
    )
    organization_change_plan(org=short, plan_code="free", source="benchmark")
    if not Monitor.objects.filter(organization=short).exists():
        Monitor.objects.create(
            organization=short, name="short", slug="short", kind="http", config={}
        )
    days = [FAR_DAY + timedelta(days=n) for n in range(3)]
    names = [partitions.partition_name(RESULTS, day) for day in days]
    with transaction.atomic():
        for name in names:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {name}")
        partitions.ensure(connection, RESULTS, "checked_at", days)
    per_monitor = max(1, day_rows // 5000)
    for day in days:
        fill(org, partitions.day_start(day), 5000, per_monitor)
    # The third day: half its rows belong to the organization on the short plan.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {names[2]} SET organization_id = %s, monitor_id = %s WHERE id %% 2 = 0",
            [short.pk, Monitor.objects.filter(organization=short).values_list("pk")[0][0]],
        )
        cursor.execute(f"VACUUM ANALYZE {RESULTS}")
        cursor.execute(f"SELECT count(*) FROM {names[0]}")
        rows = cursor.fetchone()[0]
    out: dict[str, float] = {"rows per day partition": rows}

    # Before: bounded batches of row deletes (the plain-table path, SQLite's today).
    started = time.perf_counter()
    deleted = 0
    while True:
        ids = list(
            CheckResult.objects.filter(
                organization_id=org.pk,
                checked_at__gte=partitions.day_start(days[0]),
                checked_at__lt=partitions.day_start(days[0]) + partitions.DAY,
            ).values_list("pk", flat=True)[:10_000]
        )
        if not ids:
            break
        deleted += CheckResult.objects.filter(pk__in=ids).delete()[0]
    out["before: row batches, s"] = time.perf_counter() - started
    out["before: rows deleted"] = deleted

    # Now: the next day goes with its partition.
    started = time.perf_counter()
    with transaction.atomic():
        partitions.drop(connection, names[1])
    out["now: DROP TABLE of a day, s"] = time.perf_counter() - started

    # The per-plan sweep of a kept day: only the short plan's rows.
    size_before = _size(names[2])
    started = time.perf_counter()
    swept = retention.sweep_partition(names[2], "checked_at", [short.pk], None)
    out["sweep: s"] = time.perf_counter() - started
    out["sweep: rows deleted"] = swept
    out["sweep: partition MB before"] = size_before / 1e6
    out["sweep: partition MB after"] = _size(names[2]) / 1e6
    with transaction.atomic():
        for name in (names[0], names[2]):
            partitions.drop(connection, name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="dispatch rounds per variant")
    parser.add_argument("--rollup-rounds", type=int, default=2)
    parser.add_argument("--monitors", type=int, default=5000, help="monitors in the rollup hour")
    parser.add_argument("--day-rows", type=int, default=500_000)
    parser.add_argument(
        "--no-row-by-row", action="store_true", help="rollups: the set-based statements only"
    )
    parser.add_argument(
        "--skip", action="append", default=[], choices=["dispatch", "rollups", "retention"]
    )
    args = parser.parse_args()

    setup_test_environment()
    connection.creation.create_test_db(keepdb=True, verbosity=0)
    if connection.vendor != "postgresql":
        sys.exit("PostgreSQL only: set DATABASE_URL")
    from apps.monitors import retention

    assert retention.partitioned(), "the results tables are not partitioned: migrate first"
    org = bench_org()
    print(f"database {connection.settings_dict['NAME']}; load average at start {load()}")

    if "dispatch" not in args.skip:
        times = dispatch(org, args.rounds)
        print(
            f"\n1. dispatch: claim_due(limit=5000) of 100,000, {args.rounds} rounds each, alternating"
        )
        print(f"   {'':34} {'median ms':>10} {'p95 ms':>8}")
        for name, values in times.items():
            print(f"   {name:34} {statistics.median(values):10.1f} {pct(values, 0.95):8.1f}")
        before, now = (statistics.median(v) for v in times.values())
        print(f"   ratio now/before (median): {now / before:.2f}; goal median < 50, p95 < 80")
        print(f"   load average {load()}")

    if "rollups" not in args.skip:
        rows, times, backend = rollups_bench(
            org, args.monitors, args.rollup_rounds, row_by_row=not args.no_row_by_row
        )
        print(f"\n2. rollups: one hour of {rows:,} raw results ({args.monitors:,} monitors x 60)")
        rates = {}
        for name, values in times.items():
            best = statistics.median(values)
            rates[name] = rows / best
            print(
                f"   {name:36} {best:7.2f} s  {rows / best:12,.0f} rows/s;"
                f" PostgreSQL backend {backend[name]:6.2f} CPU-s,"
                f" {rows / max(backend[name], 0.01):12,.0f} rows per CPU-second"
            )
        if len(rates) == 2:
            before, now = rates.values()
            print(f"   ratio now/before: {now / before:.1f}x")
        print("   goal >= 200,000 rows/s")
        print(f"   load average {load()}")

    if "retention" not in args.skip:
        out = retention_bench(org, args.day_rows)
        rows = out["rows per day partition"]
        print(f"\n3. retention: day partitions of {rows:,.0f} results")
        for name, value in out.items():
            print(f"   {name:36} {value:12,.3f}")
        rate = out["before: rows deleted"] / out["before: row batches, s"]
        sweep_rate = out["sweep: rows deleted"] / out["sweep: s"]
        print(
            f"   a day of 144,000,000 rows: before ~{144e6 / rate / 3600:.1f} h of row deletes "
            f"({rate:,.0f} rows/s); now one DROP TABLE ({out['now: DROP TABLE of a day, s'] * 1000:.0f} ms,"
            f" independent of the rows); a shorter plan's sweep {sweep_rate:,.0f} rows/s"
        )
        print(f"   load average {load()}")


if __name__ == "__main__":
    main()
