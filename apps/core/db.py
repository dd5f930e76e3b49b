"""Database helpers Django's ORM does not offer in the shape hot paths need."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from django.db import connections, models

_json_rows = json.JSONEncoder(separators=(",", ":"), default=str).encode


def json_rows(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as one JSON text for `json_to_recordset(%s::json) AS v(name type, ...)` on
    PostgreSQL: many rows' values in one parameter. Datetimes, dates, UUIDs and decimals go
    as their text, which the column list's types parse back exactly."""
    return _json_rows(rows)


def bulk_update_values(
    model: type[models.Model],
    objs: Sequence[models.Model],
    fields: Sequence[str],
    *,
    using: str = "default",
) -> int:
    """Update many rows, each with its own values, in one statement.

    Django's bulk_update builds a CASE WHEN per field and row, which costs ~1-2 ms of Python
    per row here (measured in benchmarks/checks.py: 80% of recording a check batch; on the
    embedded default, 60% of folding a batch of 200 monitors going down). On PostgreSQL this
    writes `UPDATE t SET ... FROM (VALUES (...), ...) v WHERE t.pk = v.pk`; on SQLite (3.33+)
    the same (as many statements as its variable limit needs);
    other databases use bulk_update.
    """
    objs = list(objs)
    if not objs:
        return 0
    conn = connections[using]
    if conn.vendor == "sqlite" and sqlite3.sqlite_version_info >= (3, 33):
        return _sqlite_update_from(conn, model, objs, fields)
    if conn.vendor != "postgresql":
        return model._default_manager.using(using).bulk_update(objs, fields)
    meta = model._meta
    pk = meta.pk
    columns = [meta.get_field(name) for name in fields]
    casts = [pk.db_type(conn)] + [f.db_type(conn) for f in columns]
    row = "(" + ", ".join(f"%s::{cast}" for cast in casts) + ")"
    qn = conn.ops.quote_name
    names = ", ".join([qn(pk.column)] + [qn(f.column) for f in columns])
    sets = ", ".join(f"{qn(f.column)} = v.{qn(f.column)}" for f in columns)
    params: list = []
    for obj in objs:
        params.append(pk.get_db_prep_value(obj.pk, conn))
        params.extend(f.get_db_prep_save(getattr(obj, f.attname), conn) for f in columns)
    # Only quoted identifiers from model metadata and placeholders go into the text; every
    # value travels as a parameter.
    values = ", ".join([row] * len(objs))
    table, key = qn(meta.db_table), qn(pk.column)
    sql = f"UPDATE {table} AS t SET {sets} FROM (VALUES {values}) AS v({names}) WHERE t.{key} = v.{key}"  # noqa: S608
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _sqlite_update_from(conn, model: type[models.Model], objs: list, fields: Sequence[str]) -> int:
    meta = model._meta
    pk = meta.pk
    columns = [meta.get_field(name) for name in fields]
    qn = conn.ops.quote_name
    sets = ", ".join(f"{qn(f.column)} = v.column{i}" for i, f in enumerate(columns, start=2))
    table, key = qn(meta.db_table), qn(pk.column)
    row = "(" + ", ".join(["%s"] * (len(columns) + 1)) + ")"
    conn.ensure_connection()
    try:
        limit = conn.connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except AttributeError:  # Python < 3.11
        limit = 999
    per_statement = max(1, limit // (len(columns) + 1))
    changed = 0
    with conn.cursor() as cursor:
        for start in range(0, len(objs), per_statement):
            chunk = objs[start : start + per_statement]
            params: list = []
            for obj in chunk:
                params.append(pk.get_db_prep_value(obj.pk, conn))
                params.extend(f.get_db_prep_save(getattr(obj, f.attname), conn) for f in columns)
            # As above: identifiers from model metadata and placeholders only.
            # SQLite names a VALUES list's columns column1, column2, ...; the statement
            # starts with UPDATE so that the cursor reports its row count.
            sql = (
                f"UPDATE {table} SET {sets} FROM (VALUES {', '.join([row] * len(chunk))}) AS v "  # noqa: S608
                f"WHERE {table}.{key} = v.column1"
            )
            cursor.execute(sql, params)
            changed += cursor.rowcount
    return changed
