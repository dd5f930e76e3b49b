#!/usr/bin/env python
"""What one dispatcher round costs: `engine.claim_due(limit=5000)` over 100,000 monitors.

A bench organization owns 100,000 HTTP monitors (bulk-inserted once, reused on later runs),
each with its MonitorSchedule row. Before each round the same 5,000 of them (a fixed random
sample, scattered over the table) are made due (next_check_at between 1 and 60 s ago); the
other 95,000 are due tomorrow or later. Each round times `claim_due(limit=5000)`: one
statement that selects FOR UPDATE SKIP LOCKED over the partial index `schedule_due` and
advances the claimed rows, in one transaction. Prints median/p95/max in ms, the time in the
statement (the rest is the transaction and Python: decoding rows, the Claimed tuples), and
EXPLAIN (ANALYZE, BUFFERS) of the statement, with the line showing `schedule_due` is used.
Last, for comparison in the same run, the claim as it was before (on the wide monitor row,
with its old indexes recreated) and as it is, each inside a rolled-back transaction.

    DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/healthorch_bench \\
    CACHE_URL=redis://127.0.0.1:6379/1 LOG_LEVEL=WARNING \\
    .venv/bin/python benchmarks/dispatch.py [--rounds 30] [--monitors 100000] [--due 5000]

Runs in the kept test database `test_<name>`.
About a minute with the defaults (the first run also inserts the monitors, ~15 s more).
Autovacuum is off on these machines, so the table is vacuumed before each timed round
(untimed; `--no-vacuum` to see the bloated case). `--no-what-if` skips the comparison.
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
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

ORG_SLUG = "bench-dispatch"
TARGET_MS = 100.0


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_snapshot() -> dict[str, float]:
    """CPU seconds so far: this process, PostgreSQL's processes, and the machine's idle."""
    postgres = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            postgres += (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            continue
    idle = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return {
        "wall": time.monotonic(),
        "this process": time.process_time(),
        "postgres": postgres,
        "idle": (int(idle[4]) + int(idle[5])) / CLK_TCK,
    }


def cpu_used(start: dict[str, float], end: dict[str, float]) -> dict[str, float]:
    wall = end["wall"] - start["wall"]
    used = {k: (end[k] - start[k]) / wall for k in ("this process", "postgres")}
    busy = (os.cpu_count() or 2) - (end["idle"] - start["idle"]) / wall
    used["others"] = max(0.0, busy - sum(used.values()))
    return used


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def prepare(total: int):
    from apps.monitors.models import Monitor, MonitorKind, MonitorSchedule, ScheduleLane
    from apps.plans import services
    from apps.tenants.models import Organization

    services.plans_ensure_defaults()
    org, _ = Organization.objects.get_or_create(slug=ORG_SLUG, defaults={"name": "Bench dispatch"})
    existing = Monitor.objects.filter(organization=org).count()
    if existing < total:
        started = time.perf_counter()
        config = {"url": "http://127.0.0.1:9/", "assertions": ["status == 200"]}
        for first in range(existing, total, 10_000):
            Monitor.objects.bulk_create(
                [
                    Monitor(
                        organization=org,
                        name=f"bench dispatch {i}",
                        slug=f"bench-dispatch-{i}",
                        kind=MonitorKind.HTTP,
                        config=config,
                        interval_seconds=300,
                    )
                    for i in range(first, min(first + 10_000, total))
                ],
                batch_size=2000,
            )
        print(f"inserted {total - existing} monitors in {time.perf_counter() - started:.1f} s")
    # Every bench monitor has a schedule row (bulk_create above writes none).
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {MonitorSchedule._meta.db_table} "
            "(monitor_id, lane, next_check_at, interval_seconds, regions) "
            f"SELECT id, 'check', now() + interval '1 day', interval_seconds, regions "
            f"FROM {Monitor._meta.db_table} WHERE organization_id = %s "
            "ON CONFLICT (monitor_id) DO NOTHING",
            [org.pk],
        )
    # Other benchmarks' monitors must not be claimed here (nor changed by the claims).
    foreign = (
        MonitorSchedule.objects.exclude(monitor__organization=org)
        .filter(
            lane=ScheduleLane.CHECK,
            next_check_at__lte=timezone.now() + timedelta(days=1),
        )
        .update(next_check_at=timezone.now() + timedelta(days=365))
    )
    if foreign:
        print(f"(moved {foreign} due monitors of other organizations a year ahead)")
    return org


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--monitors", type=int, default=100_000)
    parser.add_argument("--due", type=int, default=5000)
    parser.add_argument(
        "--no-vacuum",
        action="store_true",
        help="do not vacuum between rounds (dead row versions accumulate)",
    )
    parser.add_argument(
        "--no-what-if", action="store_true", help="skip the schema experiments (rolled back)"
    )
    args = parser.parse_args()

    setup_test_environment()
    connection.creation.create_test_db(keepdb=True, verbosity=0)
    from apps.monitors import engine
    from apps.monitors.models import Monitor, MonitorSchedule, ScheduleLane

    org = prepare(args.monitors)
    monitors = Monitor._meta.db_table
    table = MonitorSchedule._meta.db_table
    ids = list(
        Monitor.objects.filter(organization=org).order_by("slug").values_list("pk", flat=True)
    )
    due_ids = random.Random(42).sample(ids, args.due)

    # Everything of the organization far ahead, unpaused; then vacuum once.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {monitors} SET paused = false, interval_seconds = 300 "
            f"WHERE organization_id = %s AND (paused OR interval_seconds <> 300)",
            [org.pk],
        )
        cursor.execute(
            f"UPDATE {table} SET interval_seconds = 300, lane = 'check', "
            f"next_check_at = now() + interval '1 day' + random() * interval '1 day' "
            f"WHERE monitor_id IN (SELECT id FROM {monitors} WHERE organization_id = %s)",
            [org.pk],
        )
        cursor.execute(f"VACUUM ANALYZE {monitors}")
        cursor.execute(f"VACUUM ANALYZE {table}")

    def make_due() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET next_check_at = now() - (1 + random() * 59) * "
                f"interval '1 second' WHERE monitor_id = ANY(%s)",
                [due_ids],
            )

    def vacuum() -> None:
        # Autovacuum is off on these machines' PostgreSQL (it is on in production): without
        # this, every round would leave 5,000 more dead row versions for the next to skip.
        if not args.no_vacuum:
            with connection.cursor() as cursor:
                cursor.execute(f"VACUUM {table}")

    statements: list[tuple[str, float]] = []

    def timing(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            # The claim statement travels with its SET LOCALs in one query string.
            kind = "WITH" if "WITH due AS" in sql else sql.split(None, 1)[0].upper()
            statements.append((kind, time.perf_counter() - started))

    # Warm-up round (connection, catalog caches), not counted.
    make_due()
    vacuum()
    engine.claim_due(limit=args.due)

    totals: list[float] = []
    sql_times: list[float] = []
    claimed_counts = []
    cpu_start = cpu_snapshot()
    for _ in range(args.rounds):
        make_due()
        vacuum()
        statements.clear()
        with connection.execute_wrapper(timing):
            started = time.perf_counter()
            claimed = engine.claim_due(limit=args.due)
            totals.append((time.perf_counter() - started) * 1000)
        claimed_counts.append(len(claimed))
        sql_times.append(sum(s for k, s in statements if k == "WITH") * 1000)
    cpu = cpu_used(cpu_start, cpu_snapshot())

    # EXPLAIN (ANALYZE, BUFFERS) of the claim as claim_due issues it, rolled back.
    make_due()
    vacuum()
    plan: list[str] = []
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(engine._CLAIM_PLANNER)
            cursor.execute(
                "EXPLAIN (ANALYZE, BUFFERS) " + engine._CLAIM_SQL,
                {"now": timezone.now(), "limit": args.due},
            )
            plan = [r[0] for r in cursor.fetchall()]
            raise _Rollback
    except _Rollback:
        pass

    what_if = {} if args.no_what_if else wide_row_experiment(monitors, due_ids, args.due)

    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        autovacuum = cursor.fetchone()[0]
        cursor.execute(
            "SELECT n_live_tup, n_dead_tup, pg_size_pretty(pg_relation_size(%s)),"
            " pg_size_pretty(pg_relation_size('schedule_due')),"
            " (SELECT count(*) FROM pg_indexes WHERE tablename = %s)"
            " FROM pg_stat_user_tables WHERE relname = %s",
            [table, table, table],
        )
        live, dead, size, index_size, index_count = cursor.fetchone()
        # Leave nothing due for the other benchmarks.
        cursor.execute(
            f"UPDATE {table} SET next_check_at = now() + interval '1 day' "
            f"WHERE monitor_id = ANY(%s)",
            [due_ids],
        )
    all_active = MonitorSchedule.objects.filter(lane=ScheduleLane.CHECK).count()

    median = statistics.median(totals)
    print(
        f"database {connection.settings_dict['NAME']}: {all_active:,} scheduled monitors "
        f"({args.monitors:,} of the bench organization), {args.due:,} due per round, "
        f"{args.rounds} rounds; {table} {size} with {index_count} indexes "
        f"(schedule_due {index_size}), live {live:,} / dead {dead:,} row versions after the "
        f"run; autovacuum {autovacuum}, "
        f"{'vacuumed before each round' if not args.no_vacuum else 'no vacuum between rounds'}"
    )
    print(f"claimed per round: {min(claimed_counts)}..{max(claimed_counts)}")
    print(
        "cores used during the timed rounds (vacuums and make-due included): "
        + "  ".join(f"{k} {v:.2f}" for k, v in cpu.items())
    )
    print(f"\n{'operation':50} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}")
    rows = [
        ("claim_due(limit=5000), whole", totals),
        ("  of which the claim statement (execute + fetch)", sql_times),
        (
            "  of which the rest (transaction, Python, Claimed)",
            [t - q for t, q in zip(totals, sql_times, strict=True)],
        ),
    ]
    for name, values in rows:
        print(
            f"{name:50} {statistics.median(values):10.1f} {pct(values, 0.95):8.1f} {max(values):8.1f}"
        )
    print(
        f"\ntarget < {TARGET_MS:.0f} ms (median): {'MET' if median < TARGET_MS else 'MISSED'}"
        f" (median {median:.1f} ms, p95 {pct(totals, 0.95):.1f} ms, {median / TARGET_MS:.2f}x"
        f" the target)"
    )
    if what_if:
        print("\nWhat-if, each in a rolled-back transaction (5 rounds, no vacuum between them):")
        for name, values in what_if.items():
            print(f"  {name:66} median {statistics.median(values):6.1f} ms")
    print("\nEXPLAIN (ANALYZE, BUFFERS) of claim_due's statement (long lines cut):")
    for line in plan:
        print(f"  {line[:150]}{' ...' if len(line) > 150 else ''}")
    index_lines = [line.strip() for line in plan if "schedule_due" in line]
    scans = [line.strip() for line in plan if "Seq Scan" in line]
    print(
        f"\nschedule_due used: {'yes: ' + index_lines[0] if index_lines else 'NO'}; "
        f"sequential scans: {scans or 'none'}"
    )


class _Rollback(Exception):
    pass


def wide_row_experiment(monitors: str, due_ids, due: int) -> dict:
    """For comparison in the same run: the claim as it was before MonitorSchedule (one CTE
    statement advancing next_check_at on the wide monitor row, with the indexes it had then),
    and the same statement on the narrow table, both inside transactions rolled back."""
    from apps.monitors.engine import _CLAIM_PLANNER, _CLAIM_SQL

    kinds = "'http', 'tcp', 'tls', 'dns', 'postgres', 'redis'"
    wide_sql = f"""
        WITH due AS (
            SELECT id, next_check_at AS due_at FROM {monitors}
            WHERE paused = false AND kind IN ({kinds}) AND next_check_at <= %(now)s
            ORDER BY next_check_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED
        )
        UPDATE {monitors} AS m SET next_check_at = CASE
            WHEN due.due_at + m.interval_seconds * interval '1 second' > %(now)s
                THEN due.due_at + m.interval_seconds * interval '1 second'
            ELSE %(now)s + m.interval_seconds * interval '1 second' END
        FROM due WHERE m.id = due.id
        RETURNING m.id, m.regions, due.due_at
    """
    wide_setup = [
        f"ALTER TABLE {monitors} ADD COLUMN next_check_at timestamptz",
        f"UPDATE {monitors} SET next_check_at = now() + interval '1 day'",
        f"CREATE INDEX bench_monitor_due ON {monitors} (next_check_at) "
        f"WHERE paused = false AND kind IN ({kinds})",
        f"CREATE INDEX bench_monitor_heartbeat_due ON {monitors} (next_check_at) "
        "WHERE paused = false AND kind = 'heartbeat'",
        # ping_token was unique over every row (NULLs included) before 0005.
        f"CREATE UNIQUE INDEX bench_monitor_ping_token_all ON {monitors} (ping_token)",
        f"ANALYZE {monitors}",
    ]
    variants = {
        "before: the claim on the wide monitor row (its indexes as they were)": (
            wide_setup,
            None,
            wide_sql,
            f"UPDATE {monitors} SET next_check_at = now() - interval '5 seconds' "
            "WHERE id = ANY(%s)",
        ),
        "after: the claim on monitors_monitorschedule, same conditions": (
            [],
            _CLAIM_PLANNER,
            _CLAIM_SQL,
            "UPDATE monitors_monitorschedule SET next_check_at = now() - interval '5 seconds' "
            "WHERE monitor_id = ANY(%s)",
        ),
    }
    results: dict[str, list[float]] = {}
    for name, (setup, planner, sql, make_due) in variants.items():
        times: list[float] = []
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                for statement in setup:
                    cursor.execute(statement)
                if planner:
                    cursor.execute(planner)
                for _ in range(5):
                    cursor.execute(make_due, [due_ids])
                    now = timezone.now()
                    started = time.perf_counter()
                    cursor.execute(sql, {"now": now, "limit": due})
                    rows = cursor.fetchall()
                    times.append((time.perf_counter() - started) * 1000)
                    assert len(rows) == due, len(rows)
                raise _Rollback
        except _Rollback:
            pass
        results[name] = times
    return results


if __name__ == "__main__":
    main()
