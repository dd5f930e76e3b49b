#!/usr/bin/env python
"""What one dispatcher round costs: `engine.claim_due(limit=5000)` over 100,000 monitors.

A bench organization owns 100,000 HTTP monitors (bulk-inserted once, reused on later runs).
Before each round the same 5,000 of them (a fixed random sample, scattered over the table)
are made due (next_check_at between 1 and 60 s ago); the other 95,000 are due tomorrow or
later. Each round times `claim_due(limit=5000)`: the SELECT ... FOR UPDATE SKIP LOCKED over
the partial index `monitor_due` and the UPDATE advancing the claimed rows, in one
transaction. Prints median/p95/max in ms, the time in each SQL statement (the rest is Python:
building the query, the 5,000-id IN list, the Claimed objects), the same work as one raw
SQL statement for reference, and EXPLAIN (ANALYZE, BUFFERS) of both statements, with the
line showing `monitor_due` is used.

    DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/healthorch_bench \\
    CACHE_URL=redis://127.0.0.1:6379/1 LOG_LEVEL=WARNING \\
    .venv/bin/python benchmarks/dispatch.py [--rounds 30] [--monitors 100000] [--due 5000]

Runs in the kept test database `test_<name>`.
About a minute with the defaults (the first run also inserts the monitors, ~15 s more).
Autovacuum is off on these machines, so the table is vacuumed before each timed round
(untimed; `--no-vacuum` to see the bloated case). Last, the same claim as one raw statement
is timed under schema variants inside rolled-back transactions (`--no-what-if` skips it).
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


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def prepare(total: int):
    from apps.monitors.models import ACTIVE_KINDS, Monitor, MonitorKind
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
    # Other benchmarks' monitors must not be claimed here (nor changed by the claims).
    foreign = (
        Monitor.objects.exclude(organization=org)
        .filter(
            paused=False,
            kind__in=ACTIVE_KINDS,
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
    from apps.monitors.models import ACTIVE_KINDS, Monitor

    org = prepare(args.monitors)
    table = Monitor._meta.db_table
    ids = list(
        Monitor.objects.filter(organization=org).order_by("slug").values_list("pk", flat=True)
    )
    due_ids = random.Random(42).sample(ids, args.due)

    # Everything of the organization far ahead, unpaused; then vacuum once.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET paused = false, interval_seconds = 300, "
            f"next_check_at = now() + interval '1 day' + random() * interval '1 day' "
            f"WHERE organization_id = %s",
            [org.pk],
        )
        cursor.execute(f"VACUUM ANALYZE {table}")

    def make_due() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET next_check_at = now() - (1 + random() * 59) * "
                f"interval '1 second' WHERE id = ANY(%s)",
                [due_ids],
            )

    def vacuum() -> None:
        # Autovacuum is off on these machines' PostgreSQL (it is on in production): without
        # this, every round would leave 10,000 more dead row versions for the next to skip.
        if not args.no_vacuum:
            with connection.cursor() as cursor:
                cursor.execute(f"VACUUM {table}")

    statements: list[tuple[str, float]] = []

    def timing(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements.append((sql.split(None, 1)[0].upper(), time.perf_counter() - started))

    # Warm-up round (connection, catalog caches, prepared plans), not counted.
    make_due()
    engine.claim_due(limit=args.due)

    totals: list[float] = []
    per_statement: dict[str, list[float]] = {"SELECT": [], "UPDATE": []}
    claimed_counts = []
    for _ in range(args.rounds):
        make_due()
        vacuum()
        statements.clear()
        with connection.execute_wrapper(timing):
            started = time.perf_counter()
            claimed = engine.claim_due(limit=args.due)
            totals.append((time.perf_counter() - started) * 1000)
        claimed_counts.append(len(claimed))
        for kind in per_statement:
            per_statement[kind].append(sum(s for k, s in statements if k == kind) * 1000)

    # The same claim as one statement, for reference (what the database alone needs).
    raw_sql = f"""
        WITH due AS (
            SELECT id FROM {table}
            WHERE paused = false AND kind = ANY(%s) AND next_check_at <= %s
            ORDER BY next_check_at
            FOR UPDATE SKIP LOCKED
            LIMIT %s
        )
        UPDATE {table} m SET next_check_at = CASE
            WHEN m.next_check_at + m.interval_seconds * interval '1 second' > %s
            THEN m.next_check_at + m.interval_seconds * interval '1 second'
            ELSE %s + m.interval_seconds * interval '1 second' END
        FROM due WHERE m.id = due.id
        RETURNING m.id, m.regions, due.id
    """
    raw: list[float] = []
    for _ in range(args.rounds):
        make_due()
        vacuum()
        now = timezone.now()
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(raw_sql, [list(ACTIVE_KINDS), now, args.due, now, now])
            rows = cursor.fetchall()
        raw.append((time.perf_counter() - started) * 1000)
        assert len(rows) == args.due, len(rows)

    # EXPLAIN both statements of claim_due as it issues them, in a rolled-back transaction.
    make_due()
    captured: list[tuple[str, object]] = []

    def capture(execute, sql, params, many, context):
        captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        engine.claim_due(limit=args.due)
    make_due()
    plans = {}
    for sql, params in captured:
        kind = sql.split(None, 1)[0].upper()
        if kind not in ("SELECT", "UPDATE"):
            continue
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
                    plans[kind] = [r[0] for r in cursor.fetchall()]
                raise _Rollback
        except _Rollback:
            pass

    what_if = (
        {} if args.no_what_if else schema_experiments(table, due_ids, raw_sql, args.due, vacuum)
    )

    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        autovacuum = cursor.fetchone()[0]
        cursor.execute(
            "SELECT n_live_tup, n_dead_tup, pg_size_pretty(pg_relation_size(%s)),"
            " pg_size_pretty(pg_relation_size('monitor_due')) FROM pg_stat_user_tables"
            " WHERE relname = %s",
            [table, table],
        )
        live, dead, size, index_size = cursor.fetchone()
        # Leave nothing due for the other benchmarks.
        cursor.execute(
            f"UPDATE {table} SET next_check_at = now() + interval '1 day' WHERE id = ANY(%s)",
            [due_ids],
        )
    all_active = Monitor.objects.filter(paused=False, kind__in=ACTIVE_KINDS).count()

    median = statistics.median(totals)
    print(
        f"database {connection.settings_dict['NAME']}: {all_active:,} active monitors "
        f"({args.monitors:,} of the bench organization), {args.due:,} due per round, "
        f"{args.rounds} rounds; table {size}, monitor_due index {index_size}, "
        f"live {live:,} / dead {dead:,} row versions after the run; autovacuum {autovacuum}, "
        f"{'vacuumed before each round' if not args.no_vacuum else 'no vacuum between rounds'}"
    )
    print(f"claimed per round: {min(claimed_counts)}..{max(claimed_counts)}")
    print(f"\n{'operation':44} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}")
    rows = [
        ("claim_due(limit=5000), whole", totals),
        ("  of which SELECT ... FOR UPDATE SKIP LOCKED", per_statement["SELECT"]),
        ("  of which UPDATE ... WHERE id IN (5000 ids)", per_statement["UPDATE"]),
        (
            "  of which Python (ORM, Claimed objects)",
            [
                t - s - u
                for t, s, u in zip(
                    totals, per_statement["SELECT"], per_statement["UPDATE"], strict=True
                )
            ],
        ),
        ("reference: one raw CTE statement, same work", raw),
    ]
    for name, values in rows:
        print(
            f"{name:44} {statistics.median(values):10.1f} {pct(values, 0.95):8.1f} {max(values):8.1f}"
        )
    print(
        f"\ntarget < {TARGET_MS:.0f} ms: {'MET' if pct(totals, 0.95) < TARGET_MS else 'MISSED'}"
        f" (median {median:.1f} ms, p95 {pct(totals, 0.95):.1f} ms); claim_due / raw statement"
        f" = {median / statistics.median(raw):.2f}x"
    )
    if what_if:
        print(
            "\nWhat-if, the claim as one raw statement, each variant in a rolled-back transaction:"
        )
        for name, values in what_if.items():
            print(f"  {name:62} median {statistics.median(values):6.1f} ms")
    for kind, lines in plans.items():
        print(f"\nEXPLAIN (ANALYZE, BUFFERS) of claim_due's {kind} (long lines cut):")
        for line in lines:
            print(f"  {line[:150]}{' ...' if len(line) > 150 else ''}")
    index_lines = [line.strip() for line in plans.get("SELECT", []) if "monitor_due" in line]
    print(f"\nmonitor_due used: {'yes: ' + index_lines[0] if index_lines else 'NO'}")


class _Rollback(Exception):
    pass


def schema_experiments(table: str, due_ids, raw_sql: str, due: int, vacuum) -> dict:
    """Time the one-statement claim under schema variants, each inside a transaction that is
    rolled back (nothing is kept): as is; without the three indexes that other indexes
    already cover; and against a narrow schedule table (id, next_check_at, interval, paused,
    kind) holding only the dispatcher's columns."""
    from apps.monitors.models import ACTIVE_KINDS

    rounds = 5
    ids_sql = "UPDATE {t} SET next_check_at = now() - interval '5 seconds' WHERE {k} = ANY(%s)"
    redundant = [
        "monitors_monitor_organization_id_441bad0c",  # prefix of monitor_slug_per_org
        "monitors_monitor_slug_cb345352",  # slug alone: slugs are unique per organization
        "monitors_monitor_slug_cb345352_like",
    ]
    narrow_sql = raw_sql.replace(f"FROM {table}", "FROM bench_schedule").replace(
        f"UPDATE {table} m", "UPDATE bench_schedule m"
    )
    variants = {
        "as is (9 indexes)": ([], raw_sql, table, "id"),
        "without 3 redundant indexes (6 left)": (
            [f"DROP INDEX IF EXISTS {name}" for name in redundant],
            raw_sql,
            table,
            "id",
        ),
        "narrow schedule table (2 indexes: pkey, partial due)": (
            [
                f"CREATE TABLE bench_schedule AS SELECT id, next_check_at, interval_seconds, "
                f"paused, kind, regions FROM {table}",
                "ALTER TABLE bench_schedule ADD PRIMARY KEY (id)",
                "CREATE INDEX bench_schedule_due ON bench_schedule (next_check_at) "
                "WHERE NOT paused",
                "ANALYZE bench_schedule",
            ],
            narrow_sql,
            "bench_schedule",
            "id",
        ),
    }
    results: dict[str, list[float]] = {}
    for name, (setup, sql, target, key) in variants.items():
        vacuum()
        times: list[float] = []
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                for statement in setup:
                    cursor.execute(statement)
                for _ in range(rounds):
                    cursor.execute(ids_sql.format(t=target, k=key), [due_ids])
                    now = timezone.now()
                    started = time.perf_counter()
                    cursor.execute(sql, [list(ACTIVE_KINDS), now, due, now, now])
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
