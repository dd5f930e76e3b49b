"""The log table partitioned by day (PostgreSQL): partitions made ahead, days dropped by
retention, and reads (search, filters, the cursor) that cross partitions.

Skipped on SQLite, where the log table stays plain (its retention deletes rows:
test_retention.py runs on both). Run with DATABASE_URL=postgres://... . Days here are far in
the future so the partitions the migration made around today stay out of the way; each
test's DDL is rolled back with it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection

from apps.core import partitions
from apps.telemetry import selectors, services
from apps.telemetry.models import LogLine

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="day partitions exist on PostgreSQL only; SQLite keeps a plain table",
)
TABLE = LogLine._meta.db_table
D1 = date(2031, 3, 1)


def _at(day: date, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def _lines(org, *specs) -> None:
    """(ts, message[, source, level]) per line, through the service that ingestion uses."""
    rows = [
        (ts, rest[0] if rest else "api", rest[1] if len(rest) > 1 else "info", msg, {}, "", "")
        for ts, msg, *rest in specs
    ]
    services.logs_store(org=org, rows=rows)


def _where(message: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT tableoid::regclass::text FROM {TABLE} WHERE message = %s",  # noqa: S608
            [message],
        )
        return cursor.fetchone()[0]


def _settle() -> None:
    """Check this test's deferred foreign keys now: PostgreSQL refuses DDL on a table with
    checks pending in the transaction (beat and retention run in transactions of their own)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def _indexes(table: str) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [table])
        return dict(cursor.fetchall())


@postgres_only
def test_partitions_are_made_ahead_with_their_indexes_and_take_the_days_lines(org):
    made = services.log_partitions_ensure(now=_at(D1))
    day = partitions.partition_name(TABLE, D1)
    assert day in made
    assert partitions.partition_name(TABLE, D1 + timedelta(days=7)) in made
    assert services.log_partitions_ensure(now=_at(D1)) == []  # idempotent
    kinds = " ".join(_indexes(day).values())
    # the B-tree indexes for (organization, source|level|-, ts), the GIN of the search
    # column and the BRIN on ts, all on the partition itself
    assert kinds.count("USING btree") >= 4  # three indexes and the primary key
    assert "USING gin (search)" in kinds
    assert "USING brin (ts)" in kinds

    _lines(org, (_at(D1), "payment timeout upstream"))
    assert _where("payment timeout upstream") == day
    found = selectors.log_list(org=org, q="timeout")
    assert [line.message for line in found] == ["payment timeout upstream"]


@postgres_only
def test_a_line_for_a_day_without_partition_is_kept_and_moved_when_it_is_made(org):
    late = D1 + timedelta(days=30)
    _lines(org, (_at(late), "early bird"))
    assert _where("early bird") == partitions.default_name(TABLE)
    _settle()
    services.log_partitions_ensure(now=_at(late))
    assert _where("early bird") == partitions.partition_name(TABLE, late)
    # the generated search column is computed in the partition too
    assert [line.message for line in selectors.log_list(org=org, q="bird")] == ["early bird"]


@postgres_only
def test_retention_drops_whole_days_past_the_longest_log_retention(org):
    # `org` is on the free plan (3 days of logs) and the only organization: the window is 3
    services.log_partitions_ensure(now=_at(D1))
    _lines(org, (_at(D1), "day one"), (_at(D1 + timedelta(days=1)), "day two"))
    _lines(org, (_at(D1 + timedelta(days=4)), "day five"))
    _settle()
    now = _at(D1 + timedelta(days=5), 1)
    services.logs_prune(now=now)
    left = {p.day for p in partitions.partitions(connection, TABLE)}
    assert D1 not in left
    assert D1 + timedelta(days=1) not in left
    assert D1 + timedelta(days=4) in left
    assert list(LogLine.objects.values_list("message", flat=True)) == ["day five"]


@postgres_only
def test_a_shorter_plan_loses_its_rows_while_the_day_stays_for_a_longer_one(org, other_org):
    from apps.plans.services import organization_change_plan

    organization_change_plan(org=other_org, plan_code="business", source="test")
    services.log_partitions_ensure(now=_at(D1))
    _lines(org, (_at(D1), "free line"))
    _lines(other_org, (_at(D1), "business line"))
    _settle()
    assert services.logs_prune(now=_at(D1 + timedelta(days=4))) == 1
    assert D1 in {p.day for p in partitions.partitions(connection, TABLE)}
    assert list(LogLine.objects.values_list("message", flat=True)) == ["business line"]


@postgres_only
def test_reads_cross_partitions_newest_first_and_only_the_organizations(org, other_org):
    services.log_partitions_ensure(now=_at(D1))
    days = [D1 + timedelta(days=n) for n in range(3)]
    _lines(
        org,
        *[(_at(d, 10), f"timeout on {d}", "api", "error") for d in days],
        *[(_at(d, 11), f"served on {d}", "web", "info") for d in days],
    )
    _lines(other_org, *[(_at(d, 12), f"timeout elsewhere {d}") for d in days])
    assert len({_where(f"timeout on {d}") for d in days}) == 3  # three partitions

    everything = list(selectors.log_list(org=org))
    assert [line.ts for line in everything] == sorted(
        (line.ts for line in everything), reverse=True
    )
    assert len(everything) == 6
    found = selectors.log_list(org=org, q="timeout")
    assert [line.message for line in found] == [f"timeout on {d}" for d in reversed(days)]
    assert selectors.log_list(org=org, source="web").count() == 3
    assert selectors.log_list(org=org, levels=["error"], q="timeout").count() == 3
    window = selectors.log_list(org=org, since=_at(days[1], 0), until=_at(days[2], 0))
    assert [line.message for line in window] == [f"served on {days[1]}", f"timeout on {days[1]}"]


@postgres_only
def test_the_cursor_pages_across_a_partition_boundary(key_client, org):
    services.log_partitions_ensure(now=_at(D1))
    # five lines each side of midnight, one second apart: pages of three straddle the boundary
    midnight = _at(D1 + timedelta(days=1), 0)
    moments = [midnight + timedelta(seconds=s) for s in range(-5, 5)]
    _lines(org, *[(at, f"line {i}") for i, at in enumerate(moments)])
    assert _where("line 4") != _where("line 5")
    client = key_client(org)
    seen, url, params = [], "/api/v1/logs", {"page_size": 3}
    while url:
        page = client.get(url, params).json()
        seen += [row["message"] for row in page["results"]]
        url, params = page["next"], None
    assert seen == [f"line {i}" for i in reversed(range(10))]
