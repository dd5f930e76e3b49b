"""Database helpers Django's ORM does not offer in the shape hot paths need."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections, models


def bulk_update_values(
    model: type[models.Model],
    objs: Sequence[models.Model],
    fields: Sequence[str],
    *,
    using: str = "default",
) -> int:
    """Update many rows, each with its own values, in one statement.

    Django's bulk_update builds a CASE WHEN per field and row, which costs ~1-2 ms of Python
    per row here (measured in benchmarks/checks.py: 80% of recording a check batch). On
    PostgreSQL this writes `UPDATE t SET ... FROM (VALUES (...), ...) v WHERE t.pk = v.pk`
    instead; other databases use bulk_update.
    """
    objs = list(objs)
    if not objs:
        return 0
    conn = connections[using]
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
