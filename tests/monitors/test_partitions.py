"""Results, pings and samples partitioned by day (PostgreSQL), and retention over them.

The PostgreSQL tests are skipped on SQLite, where these tables are plain (the embedded default
has no partitioning; its retention deletes rows, tested in test_rollups.py). Run them with
DATABASE_URL=postgres://... . Days here are far in the future so that the partitions the
migration made around today stay out of the way; every test's DDL is rolled back with it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core import partitions
from apps.monitors import retention, services
from apps.monitors.models import CheckResult, HeartbeatPing
from apps.plans.services import organization_change_plan

pytestmark = pytest.mark.django_db
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="day partitions exist on PostgreSQL only; SQLite keeps plain tables",
)
RESULTS = CheckResult._meta.db_table
D1 = date(2031, 3, 1)


def _at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _monitor(org, name="api"):
    return services.monitor_create(
        org=org, data={"name": name, "kind": "http", "config": {"url": "http://127.0.0.1:9/"}}
    )


def _results(monitor, moments):
    return CheckResult.objects.bulk_create(
        [
            CheckResult(
                monitor=monitor,
                organization_id=monitor.organization_id,
                checked_at=at,
                outcome="up",
                response_time_ms=12.0,
            )
            for at in moments
        ]
    )


def _where(pk) -> str:
    """The partition (table) holding a result."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT tableoid::regclass::text FROM {RESULTS} WHERE id = %s", [pk])  # noqa: S608
        return cursor.fetchone()[0]


def _settle() -> None:
    """Check the deferred foreign keys of this test's inserts now: PostgreSQL refuses DDL on
    a table with checks pending in the transaction (retention runs in its own transaction)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def _days(first: date, count: int) -> list[date]:
    return [first + timedelta(days=n) for n in range(count)]


@postgres_only
def test_the_tables_are_partitioned_with_a_default_partition():
    assert retention.partitioned()
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [partitions.default_name(RESULTS)])
        assert cursor.fetchone()[0] is not None
    # The migration (or the build) made today's and the next days' partitions.
    today = datetime.now(UTC).date()
    made = {p.day for p in partitions.partitions(connection, RESULTS)}
    assert {today, today + timedelta(days=1)} <= made


@postgres_only
def test_beat_makes_partitions_ahead_and_rows_land_in_their_day(org):
    monitor = _monitor(org)
    made = retention.partitions_ensure(now=_at(D1), ahead=2)
    assert partitions.partition_name(RESULTS, D1 + timedelta(days=2)) in made
    assert partitions.partition_name(HeartbeatPing._meta.db_table, D1) in made
    assert retention.partitions_ensure(now=_at(D1), ahead=2) == []  # idempotent
    (row,) = _results(monitor, [_at(D1 + timedelta(days=1))])
    assert _where(row.pk) == partitions.partition_name(RESULTS, D1 + timedelta(days=1))


@postgres_only
def test_rows_the_default_partition_caught_move_into_their_new_partition(org):
    monitor = _monitor(org)
    early, late = _results(monitor, [_at(D1, 1), _at(D1, 23)])
    assert _where(early.pk) == partitions.default_name(RESULTS)  # no partition for D1 yet
    partitions.ensure(connection, RESULTS, "checked_at", [D1])
    assert _where(early.pk) == _where(late.pk) == partitions.partition_name(RESULTS, D1)
    assert CheckResult.objects.filter(monitor=monitor).count() == 2


@postgres_only
def test_results_across_three_partitions_read_as_one_table(client_for, member, org):
    monitor = _monitor(org)
    partitions.ensure(connection, RESULTS, "checked_at", _days(D1, 3))
    rows = _results(monitor, [_at(day, h) for day in _days(D1, 3) for h in (6, 18)])
    assert len({_where(r.pk) for r in rows}) == 3
    client = client_for(member)
    url = f"/api/v1/monitors/{monitor.pk}/results/"
    seen, page = [], client.get(url, {"page_size": 4}).json()
    while True:
        seen += [r["checked_at"] for r in page["results"]]
        if not page["next"]:
            break
        page = client.get(page["next"]).json()
    assert len(seen) == 6
    assert seen == sorted(seen, reverse=True)
    since = client.get(url, {"since": _at(D1 + timedelta(days=1)).isoformat()}).json()
    assert len(since["results"]) == 3  # 18:00 of the 2nd day and both of the 3rd


@postgres_only
def test_retention_drops_a_day_past_the_window_in_one_statement(org, other_org):
    # org is on free (7 days), other_org on enterprise: the window is enterprise's retention.
    organization_change_plan(org=other_org, plan_code="enterprise", source="test")
    plan = retention.retention_plan()
    window = plan.window_days
    assert window is not None
    assert window > 7
    theirs = _monitor(other_org, "theirs")
    days = _days(D1, 3)
    partitions.ensure(connection, RESULTS, "checked_at", days)
    _results(theirs, [_at(day) for day in days])
    now = partitions.day_start(D1 + timedelta(days=1)) + timedelta(days=window, hours=1)
    _settle()
    with CaptureQueriesContext(connection) as queries:
        report = retention.prune_partitioned(now=now, plan=plan, full=False)
    gone = partitions.partition_name(RESULTS, D1)
    assert gone in report.dropped
    assert partitions.partition_name(RESULTS, D1 + timedelta(days=1)) not in report.dropped
    touching = [q["sql"] for q in queries.captured_queries if gone in q["sql"]]
    assert touching == [f'DROP TABLE "{gone}"']
    assert D1 not in {p.day for p in partitions.partitions(connection, RESULTS)}
    left = CheckResult.objects.filter(monitor=theirs).values_list("checked_at", flat=True)
    assert sorted(left) == [_at(D1 + timedelta(days=1)), _at(D1 + timedelta(days=2))]


@postgres_only
def test_a_shorter_plan_loses_only_its_own_rows_of_a_kept_day(org, other_org):
    organization_change_plan(org=other_org, plan_code="enterprise", source="test")
    mine, theirs = _monitor(org, "mine"), _monitor(other_org, "theirs")
    days = _days(D1, 3)
    partitions.ensure(connection, RESULTS, "checked_at", days)
    for monitor in (mine, theirs):
        _results(monitor, [_at(day) for day in days])
        HeartbeatPing.objects.create(
            monitor=monitor,
            organization_id=monitor.organization_id,
            kind="success",
            received_at=_at(D1),
        )
    # Free keeps 7 days: at D1 + 8.5 days the first two days are past its cutoff.
    now = _at(D1 + timedelta(days=8), 12) + timedelta(hours=12)
    _settle()
    report = retention.prune_partitioned(now=now, full=False)
    # Enterprise keeps these days (today's partitions, years before `now`, do go).
    assert not [name for name in report.dropped if "_p2031" in name]
    assert report.rows_deleted == 3  # two results and one ping of org
    kept_mine = CheckResult.objects.filter(monitor=mine).values_list("checked_at", flat=True)
    assert list(kept_mine) == [_at(D1 + timedelta(days=2))]
    assert CheckResult.objects.filter(monitor=theirs).count() == 3
    assert HeartbeatPing.objects.filter(monitor=theirs).count() == 1
    assert retention.prune_partitioned(now=now, full=True).rows_deleted == 0  # nothing left


@postgres_only
def test_a_populated_table_converts_both_ways_keeping_rows_and_ids(org):
    monitor = _monitor(org)
    rows = _results(monitor, [_at(day) for day in _days(D1, 3)])
    before = sorted(CheckResult.objects.values_list("id", "checked_at"))
    _settle()
    with connection.schema_editor(atomic=True) as editor:
        partitions.rebuild(editor, CheckResult, None)
    assert not partitions.is_partitioned(connection, RESULTS)
    assert sorted(CheckResult.objects.values_list("id", "checked_at")) == before
    with connection.schema_editor(atomic=True) as editor:
        partitions.rebuild(editor, CheckResult, "checked_at", days=[D1])
    assert partitions.is_partitioned(connection, RESULTS)
    assert sorted(CheckResult.objects.values_list("id", "checked_at")) == before
    # Every day that had rows got its partition; new ids continue after the old ones.
    assert {_where(r.pk) for r in rows} == {
        partitions.partition_name(RESULTS, day) for day in _days(D1, 3)
    }
    (new,) = _results(monitor, [_at(D1)])
    assert new.pk > max(pk for pk, _ in before)


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite layout")
def test_sqlite_keeps_plain_tables_and_makes_no_partitions():
    assert not retention.partitioned()
    assert retention.partitions_ensure() == []
