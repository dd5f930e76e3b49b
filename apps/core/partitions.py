"""Append-only tables partitioned by day on PostgreSQL: built, extended ahead, dropped whole.

A table of rows that only grow and age out (check results, heartbeat pings, metric samples) is,
on PostgreSQL, a declarative RANGE-partitioned table on its time column with one partition per
UTC day, named `<table>_pYYYYMMDD`, plus a default partition `<table>_default`. Deleting a day
of rows is then `DROP TABLE` of one partition: milliseconds and no dead rows, where a `DELETE`
of 144 million rows takes hours and leaves the table bloated until a vacuum.

- Partitions are made ahead (`ensure`, from a beat task and when the table is built), so
  inserts never wait on DDL. The default partition catches a row whose day has no partition
  yet (beat stopped for longer than the days made ahead, or a clock far off): a write is never
  refused for want of a partition. `ensure` moves such rows into the day's partition when it
  makes it, so the default partition stays empty in normal operation.
- The primary key becomes (id, time column): PostgreSQL requires a unique constraint of a
  partitioned table to contain the partition key. Ids still come from one identity sequence,
  so an id stays unique in practice; nothing references these rows by foreign key.
- Each partition gets a BRIN index on the time column: rows arrive in time order, so a few
  kilobytes of block ranges narrow a time-range scan (a rollup's hour) to the right blocks.

SQLite has no partitioning: there these tables stay plain tables behind the same models, and
every function here is a no-op (`supported` is False). Retention deletes rows there instead.

`rebuild` turns a populated plain table into the partitioned layout (and back): the migration
that introduced the layout and the one-step build of an empty database both call it, so both
end with the same tables, constraint names and indexes.
"""

# Identifiers here are table and column names from model metadata and partition names made
# from dates; values always go as parameters.
# ruff: noqa: S608

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models.signals import post_migrate

DAY = timedelta(days=1)
_DAY_SUFFIX = re.compile(r"_p(\d{8})$")


def supported(connection: Any) -> bool:
    return connection.vendor == "postgresql"


def ensure_after_migrate(config: Any, ensure_ahead: str) -> None:
    """Every `migrate` of the app of `config` makes its day partitions ahead too, so a database
    that was down longer than beat's days ahead is whole again before the workers write.
    `ensure_ahead` is the dotted path of the app's function that makes them, imported when a
    migrate of PostgreSQL's default database ends. For the app's `ready()`."""

    def made_ahead(*, using: str = "default", **_: object) -> None:
        from django.db import connections
        from django.utils.module_loading import import_string

        if using == "default" and supported(connections[using]):
            import_string(ensure_ahead)()

    post_migrate.connect(
        made_ahead, sender=config, weak=False, dispatch_uid=f"{config.label}-partitions"
    )


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def default_name(table: str) -> str:
    return f"{table}_default"


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass(frozen=True)
class Partition:
    """One day's partition: rows with start <= time < end."""

    name: str
    day: date

    @property
    def start(self) -> datetime:
        return day_start(self.day)

    @property
    def end(self) -> datetime:
        return day_start(self.day) + DAY


def is_partitioned(connection: Any, table: str) -> bool:
    if not supported(connection):
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    return bool(row) and row[0] == "p"


def partitions(connection: Any, table: str) -> list[Partition]:
    """The day partitions of `table`, oldest first (the default partition is not one)."""
    if not supported(connection):
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = to_regclass(%s)",
            [table],
        )
        names = [row[0] for row in cursor.fetchall()]
    found = []
    for name in names:
        match = _DAY_SUFFIX.search(name)
        if match and name == partition_name(table, _parse_day(match.group(1))):
            found.append(Partition(name, _parse_day(match.group(1))))
    return sorted(found, key=lambda p: p.day)


def _parse_day(digits: str) -> date:
    return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))


def ensure(connection: Any, table: str, column: str, days: Iterable[date]) -> list[str]:
    """Make the partitions of these days that do not exist yet; return the names made.

    Each is made as a plain table, filled with the rows the default partition caught for its
    day (normally none), then attached: attaching takes a lighter lock on the parent than
    `CREATE TABLE ... PARTITION OF`, so inserts into the other days carry on meanwhile.
    """
    if not is_partitioned(connection, table):
        return []
    existing = {p.day for p in partitions(connection, table)}
    made = []
    q = connection.ops.quote_name
    for day in sorted(set(days) - existing):
        name = partition_name(table, day)
        bounds = [day_start(day), day_start(day) + DAY]
        with connection.cursor() as cursor:
            # Generated columns stay generated (a partition must compute them as its parent
            # does), so the moved rows name only the columns that are written.
            cursor.execute(
                f"CREATE TABLE {q(name)} (LIKE {q(table)} "
                "INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED)"
            )
            columns = ", ".join(q(c) for c in _written_columns(connection, table))
            cursor.execute(
                f"WITH moved AS (DELETE FROM {q(default_name(table))} "
                f"WHERE {q(column)} >= %s AND {q(column)} < %s RETURNING *) "
                f"INSERT INTO {q(name)} ({columns}) SELECT {columns} FROM moved",
                bounds,
            )
            cursor.execute(
                f"ALTER TABLE {q(table)} ATTACH PARTITION {q(name)} FOR VALUES FROM (%s) TO (%s)",
                bounds,
            )
        made.append(name)
    return made


def _written_columns(connection: Any, table: str) -> list[str]:
    """`table`'s columns in order, without dropped and generated ones."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
            "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            [table],
        )
        return [row[0] for row in cursor.fetchall()]


def drop(connection: Any, name: str, *, lock_timeout_ms: int = 5000) -> None:
    """Drop one partition: its day of rows goes in one statement, leaving no dead rows.

    Dropping a partition briefly locks the parent table; a bounded wait means a long report
    query holding it makes this run fail (and retry tomorrow) instead of queueing every
    insert behind it.
    """
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
        cursor.execute(f"DROP TABLE {connection.ops.quote_name(name)}")


def rebuild(editor: Any, model: Any, column: str | None, *, days: Iterable[date] = ()) -> None:
    """Rebuild `model`'s table partitioned by day on `column` (None: as a plain table),
    keeping its rows, its identity sequence's position and every constraint and index name.

    Steps, in the caller's transaction: free the names (drop the old table's keys and
    indexes, detach its identity), rename it aside, create the new table from its columns,
    make the partitions of `days` and of every day that has rows, copy the rows, drop the old
    table, then give the new one its identity, primary key (with `column` when partitioned),
    foreign keys, indexes and constraints exactly as Django names them, and a BRIN index on
    `column`. PostgreSQL only; the caller decides (see `supported`).
    """
    connection = editor.connection
    q = editor.quote_name
    table = model._meta.db_table
    aside = f"{table}_rebuilt"[:63]
    pk = model._meta.pk.column
    was_partitioned = is_partitioned(connection, table)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(%s) "
            "AND contype IN ('p', 'f', 'u', 'x') AND coninhcount = 0",
            [table],
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f"ALTER TABLE {q(table)} DROP CONSTRAINT {q(name)}")
        cursor.execute(
            "SELECT i.indexrelid::regclass::text FROM pg_index i "
            "WHERE i.indrelid = to_regclass(%s)",
            [table],
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f"DROP INDEX {name}")
        cursor.execute(f"ALTER TABLE {q(table)} ALTER COLUMN {q(pk)} DROP IDENTITY IF EXISTS")
        cursor.execute(f"ALTER TABLE {q(table)} RENAME TO {q(aside)}")
        if was_partitioned:
            # The old partitions' names must be free for the new table's.
            cursor.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = to_regclass(%s)",
                [aside],
            )
            for (name,) in cursor.fetchall():
                cursor.execute(f"ALTER TABLE {q(name)} RENAME TO {q(('r_' + name)[:63])}")
        layout = f" PARTITION BY RANGE ({q(column)})" if column else ""
        cursor.execute(
            f"CREATE TABLE {q(table)} (LIKE {q(aside)} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            + layout
        )
        if column:
            cursor.execute(
                f"SELECT DISTINCT date_trunc('day', {q(column)} AT TIME ZONE 'UTC')::date "
                f"FROM {q(aside)}"
            )
            with_rows = {row[0] for row in cursor.fetchall()}
            cursor.execute(f"CREATE TABLE {q(default_name(table))} PARTITION OF {q(table)} DEFAULT")
            for day in sorted(with_rows | set(days)):
                cursor.execute(
                    f"CREATE TABLE {q(partition_name(table, day))} PARTITION OF {q(table)} "
                    "FOR VALUES FROM (%s) TO (%s)",
                    [day_start(day), day_start(day) + DAY],
                )
        cursor.execute(f"INSERT INTO {q(table)} SELECT * FROM {q(aside)}")
        cursor.execute(f"DROP TABLE {q(aside)}")
        cursor.execute(
            f"ALTER TABLE {q(table)} ALTER COLUMN {q(pk)} ADD GENERATED BY DEFAULT AS IDENTITY"
        )
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, %s), "
            f"coalesce((SELECT max({q(pk)}) FROM {q(table)}), 0) + 1, false)",
            [table, pk],
        )
        key = f"{q(pk)}, {q(column)}" if column else q(pk)
        cursor.execute(
            f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(table + '_pkey')} PRIMARY KEY ({key})"
        )
    # Foreign keys, indexes and constraints as Django's schema editor names them when it
    # creates the model, so a rebuilt table and a created one cannot be told apart by name.
    for field in model._meta.local_fields:
        if field.remote_field and field.db_constraint:
            editor.execute(editor._create_fk_sql(model, field, "_fk_%(to_table)s_%(to_column)s"))
    for statement in editor._model_indexes_sql(model):
        editor.execute(statement)
    for constraint in model._meta.constraints:
        editor.execute(constraint.create_sql(model, editor))
    if column:
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE INDEX {q(brin_name(table, column))} ON {q(table)} USING brin ({q(column)})"
            )


def brin_name(table: str, column: str) -> str:
    return f"{table}_{column}_brin"[:63]
