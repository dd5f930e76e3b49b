#!/usr/bin/env python
"""What one dispatcher round costs: `engine.claim_due(limit=5000)` over 100,000 monitors.

A bench organization owns 100,000 HTTP monitors (bulk-inserted once, reused on later runs),
each with its MonitorSchedule row. Before each round the same 5,000 of them (a fixed random
sample, scattered over the table) are made due (next_check_at between 1 and 60 s ago); the
other 95,000 are due tomorrow or later. Each round times a claim of 5,000: one statement that
selects FOR UPDATE SKIP LOCKED over the partial index `schedule_due` and advances the claimed
rows. Two claims alternate round by round, so both see the same machine:

- **main**: the claim as it was on the main branch before issue 18's dispatch work (a copy
  of it, below: BEGIN, the statement, COMMIT; numeric epoch arithmetic; a datetime per row);
- **now**: `engine.claim_due` as it is (one round trip, float arithmetic, no datetime per row).

Prints median/p95/max in ms for each, the time in the statement (the rest is the
transaction and Python: decoding rows, the Claimed tuples), the CPU each claim cost (this
process, and the PostgreSQL backend serving it), the ratios, the load average before and
after, and EXPLAIN (ANALYZE, BUFFERS, WAL) of both statements, with the line showing
`schedule_due` is used. Last, what-ifs inside rolled-back transactions: the claim as it was
before the schedule table (on the wide monitor row, with its old indexes recreated), and the
next step, a claim that updates no indexed column (`wheel_experiment`: rows found by their
phase within the interval, advanced as heap-only tuples).

    DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/healthorch_bench \\
    CACHE_URL=redis://127.0.0.1:6379/1 LOG_LEVEL=WARNING \\
    .venv/bin/python benchmarks/dispatch.py [--rounds 30] [--monitors 100000] [--due 5000]

Runs in the kept test database `test_<name>`.
About a minute with the defaults (the first run also inserts the monitors, ~15 s more).
Autovacuum is off on these machines, so the table is vacuumed before each timed round
(untimed; `--no-vacuum` to see the bloated case). `--no-what-if` skips the wide-row claim.
"""

# SQL here is built from model table names and constants; values always go as parameters.
# ruff: noqa: S608

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

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
TARGET_MS = 50.0  # median; and p95 < TARGET_P95_MS
TARGET_P95_MS = 80.0


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


# --- The claim as it was on main before issue 18's dispatch work, for comparison -------------

_MAIN_CLAIM_SQL = """
WITH due AS (
    SELECT ctid AS row_id, monitor_id, next_check_at AS due_at, interval_seconds, regions
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
WHERE s.ctid = due.row_id
RETURNING s.monitor_id::text, due.regions::text,
    (extract(epoch FROM due.due_at) * 1000000)::bigint, due.interval_seconds
"""
_MAIN_CLAIM_SETTINGS = (
    "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; "
    "SET LOCAL synchronous_commit = off; "
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MainClaimed(NamedTuple):
    monitor_id: str
    regions: list[str]
    lag_seconds: float
    due_at: datetime | None = None
    run: bool = True


def main_claim_due(*, now: datetime | None = None, limit: int = 5000) -> list[MainClaimed]:
    """main's engine.claim_due on PostgreSQL: BEGIN, the statement, COMMIT; due times as
    numeric epoch microseconds, a datetime per row."""
    from apps.core.pauses import gc_held

    now = now or timezone.now()
    with gc_held():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_MAIN_CLAIM_SETTINGS + _MAIN_CLAIM_SQL, {"now": now, "limit": limit})
            while cursor.description is None and cursor.nextset():
                pass
            rows = cursor.fetchall()
        rows.sort(key=_due_of)
        now_us = (now - _EPOCH) // timedelta(microseconds=1)
        decoded: dict[str, list[str]] = {}
        claimed = []
        for pk, regions, due_us, interval in rows:
            lag = (now_us - due_us) / 1e6
            listed = decoded.get(regions) or decoded.setdefault(regions, json.loads(regions))
            claimed.append(
                MainClaimed(
                    pk,
                    list(listed or ("default",)),
                    lag,
                    _EPOCH + timedelta(microseconds=due_us),
                    lag < interval,
                )
            )
        return claimed


def _due_of(row: tuple) -> int:
    return row[2]


def backend_cpu_seconds() -> float:
    """CPU seconds so far of the PostgreSQL backend serving this connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


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
        # Every run starts from compact indexes: the make-due and claim rounds of earlier runs
        # leave schedule_due several times its size (6 -> 18 MB), and each run would then
        # measure a little more of that history than the one before.
        cursor.execute(f"REINDEX TABLE {table}")

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

    variants = {"main": main_claim_due, "now": engine.claim_due}
    # Warm-up round of each (connection, catalog caches), not counted.
    for claim in variants.values():
        make_due()
        vacuum()
        claim(limit=args.due)

    totals: dict[str, list[float]] = {name: [] for name in variants}
    sql_times: dict[str, list[float]] = {name: [] for name in variants}
    process_cpu: dict[str, float] = dict.fromkeys(variants, 0.0)
    backend_cpu: dict[str, float] = dict.fromkeys(variants, 0.0)
    claimed_counts = []
    load_before = load()
    cpu_start = cpu_snapshot()
    for _ in range(args.rounds):
        for name, claim in variants.items():
            make_due()
            vacuum()
            statements.clear()
            gc.collect()
            backend_before = backend_cpu_seconds()
            process_before = time.process_time()
            with connection.execute_wrapper(timing):
                started = time.perf_counter()
                claimed = claim(limit=args.due)
                totals[name].append((time.perf_counter() - started) * 1000)
            process_cpu[name] += time.process_time() - process_before
            backend_cpu[name] += backend_cpu_seconds() - backend_before
            claimed_counts.append(len(claimed))
            sql_times[name].append(sum(s for k, s in statements if k == "WITH") * 1000)
    cpu = cpu_used(cpu_start, cpu_snapshot())
    load_after = load()

    # EXPLAIN (ANALYZE, BUFFERS, WAL) of both statements, each rolled back.
    plans: dict[str, list[str]] = {}
    for name, sql in (("main", _MAIN_CLAIM_SQL), ("now", engine._CLAIM_SQL)):
        make_due()
        vacuum()
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(engine._CLAIM_PLANNER)
                cursor.execute(
                    "EXPLAIN (ANALYZE, BUFFERS, WAL) " + sql,
                    {"now": timezone.now(), "limit": args.due},
                )
                plans[name] = [r[0] for r in cursor.fetchall()]
                raise _Rollback
        except _Rollback:
            pass
    plan = plans["now"]

    what_if = (
        {}
        if args.no_what_if
        else {
            **wide_row_experiment(monitors, due_ids, args.due),
            **wheel_experiment(table, args.due),
        }
    )

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

    print(
        f"database {connection.settings_dict['NAME']}: {all_active:,} scheduled monitors "
        f"({args.monitors:,} of the bench organization), {args.due:,} due per round, "
        f"{args.rounds} rounds of each claim, alternating; {table} {size} with "
        f"{index_count} indexes (schedule_due {index_size}), live {live:,} / dead {dead:,} row "
        f"versions after the run; autovacuum {autovacuum}, "
        f"{'vacuumed before each round' if not args.no_vacuum else 'no vacuum between rounds'}"
    )
    print(f"claimed per round: {min(claimed_counts)}..{max(claimed_counts)}")
    print(f"load average before {load_before}, after {load_after} ({os.cpu_count()} cores)")
    print(
        "cores used during the timed rounds (vacuums and make-due included): "
        + "  ".join(f"{k} {v:.2f}" for k, v in cpu.items())
    )
    print(
        f"\n{'claim of ' + format(args.due, ',') + ' (ms)':52} {'median':>8} {'p95':>8} {'max':>8}"
    )
    for name in variants:
        rest = [t - q for t, q in zip(totals[name], sql_times[name], strict=True)]
        rows = [
            (f"{name}: whole claim", totals[name]),
            ("  of which the statement (execute + fetch)", sql_times[name]),
            ("  of which the rest (transaction, Python, tuples)", rest),
        ]
        for label, values in rows:
            print(
                f"{label:52} {statistics.median(values):8.1f} {pct(values, 0.95):8.1f}"
                f" {max(values):8.1f}"
            )
        print(
            f"{'  CPU per claim: this process / PostgreSQL backend':52}"
            f" {process_cpu[name] / args.rounds * 1000:8.1f} {backend_cpu[name] / args.rounds * 1000:8.1f}"
        )
    main_median, now_median = (statistics.median(totals[n]) for n in variants)
    main_p95, now_p95 = (pct(totals[n], 0.95) for n in variants)
    main_cpu, now_cpu = (process_cpu[n] + backend_cpu[n] for n in variants)
    print(
        f"\nnow/main: median {now_median / main_median:.2f}, p95 {now_p95 / main_p95:.2f},"
        f" CPU (both processes) {now_cpu / main_cpu:.2f}"
    )
    met = now_median < TARGET_MS and now_p95 < TARGET_P95_MS
    print(
        f"target median < {TARGET_MS:.0f} ms and p95 < {TARGET_P95_MS:.0f} ms:"
        f" {'MET' if met else 'MISSED'} (median {now_median:.1f} ms, p95 {now_p95:.1f} ms)"
    )
    if what_if:
        print("\nWhat-if, each in a rolled-back transaction (5 rounds, no vacuum between them):")
        for name, values in what_if.items():
            print(f"  {name:66} median {statistics.median(values):6.1f} ms")
    for name, lines in plans.items():
        print(f"\nEXPLAIN (ANALYZE, BUFFERS, WAL) of the {name} statement (long lines cut):")
        for line in lines:
            print(f"  {line[:150]}{' ...' if len(line) > 150 else ''}")
    index_lines = [line.strip() for line in plan if "schedule_due" in line]
    scans = [line.strip() for line in plan if "Seq Scan" in line]
    print(
        f"\nschedule_due used (now): {'yes: ' + index_lines[0] if index_lines else 'NO'}; "
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


WHEEL_INTERVAL_S = 300  # every bench monitor's interval


def wheel_experiment(table: str, due: int) -> dict:
    """What a claim that updates no indexed column would cost (the next step for dispatch).

    Today's claim moves `next_check_at`, which `schedule_due` indexes: every claimed row is a
    new row version plus an entry in each index. Here, on a copy of the schedule table inside
    a rolled-back transaction, the index is on the monitor's phase within its interval
    (`phase_ms`, which a claim never changes) and the claim finds the rows whose slot fell in
    the last window of the wheel, then advances `next_check_at`, now in no index: PostgreSQL
    writes a heap-only tuple (HOT) on the same page, no index entry. `due` rows are made due
    by phase (the window is `due`/rows of the interval), and claimed in one statement.
    Both copies get the same rounds: make due, claim; no vacuum between them.
    What this leaves out, for the design: the dispatcher's memory of the last window it
    claimed, windows that wrap or were missed, intervals other than one, heartbeat deadlines
    (their own index on `next_check_at` would prevent HOT; they need a column of their own).
    """
    interval_ms = WHEEL_INTERVAL_S * 1000
    setup = [
        f"CREATE TEMP TABLE bench_wheel (LIKE {table}) WITH (fillfactor = 70)",
        "ALTER TABLE bench_wheel ADD COLUMN phase_ms integer",
        # A phase per monitor, spread evenly over the interval (a hash of its id).
        f"INSERT INTO bench_wheel SELECT *, (hashtextextended(monitor_id::text, 0) "
        f"% {interval_ms} + {interval_ms}) % {interval_ms} FROM {table} WHERE lane = 'check'",
        "ALTER TABLE bench_wheel ADD PRIMARY KEY (monitor_id)",
        "CREATE INDEX bench_wheel_due ON bench_wheel (interval_seconds, phase_ms) "
        "WHERE lane = 'check'",
        "ANALYZE bench_wheel",
    ]
    claim_sql = """
        UPDATE bench_wheel AS s
        SET next_check_at = s.next_check_at + s.interval_seconds * (1 + floor(
            date_part('epoch', %(now)s - s.next_check_at) / s.interval_seconds
        )) * interval '1 second'
        WHERE s.lane = 'check' AND s.interval_seconds = %(interval)s
          AND (s.phase_ms > %(lo)s AND s.phase_ms <= %(hi)s OR s.phase_ms > %(lo2)s)
          AND s.next_check_at <= %(now)s
        RETURNING s.monitor_id::text, s.regions::text,
            round(date_part('epoch', %(now)s - s.next_check_at) * 1000000)::bigint,
            s.interval_seconds
    """
    times: list[float] = []
    counts: list[int] = []
    hot = 0
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            for statement in setup:
                cursor.execute(statement)
            cursor.execute("SELECT count(*) FROM bench_wheel")
            window_ms = int(interval_ms * due / cursor.fetchone()[0])
            for _ in range(5):
                now = timezone.now()
                phase_now = int(now.timestamp() * 1000) % interval_ms
                # How far behind now each row's slot is, in ms ("%%": the statement has parameters).
                behind = f"(({phase_now} - phase_ms + {interval_ms}) %% {interval_ms})"
                cursor.execute(
                    f"UPDATE bench_wheel SET next_check_at = %s - {behind} * interval '1 ms' "
                    f"WHERE {behind} < {window_ms}",
                    [now],
                )
                lo = phase_now - window_ms
                window = (
                    {"lo": lo, "hi": phase_now, "lo2": interval_ms}
                    if lo >= 0
                    else {"lo": -1, "hi": phase_now, "lo2": lo + interval_ms}
                )
                hot_before = _hot_updates(cursor)
                started = time.perf_counter()
                cursor.execute(claim_sql, {"now": now, "interval": WHEEL_INTERVAL_S, **window})
                rows = cursor.fetchall()
                times.append((time.perf_counter() - started) * 1000)
                counts.append(len(rows))
                hot += _hot_updates(cursor) - hot_before
            raise _Rollback
    except _Rollback:
        pass
    name = (
        f"next step: claim by phase window ({min(counts):,}-{max(counts):,} rows, "
        f"{hot / sum(counts):.0%} HOT)"
    )
    return {name: times}


def _hot_updates(cursor) -> int:
    cursor.execute(
        "SELECT n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'bench_wheel'"
    )
    return cursor.fetchone()[0]


if __name__ == "__main__":
    main()
