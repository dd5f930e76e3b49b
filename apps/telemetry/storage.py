"""Where log lines are written and searched, per database: one interface for both.

- Writing: PostgreSQL takes a batch through `COPY` (several times faster than INSERTs, see
  docs/benchmarks.md); SQLite, the embedded default, through one multi-row INSERT per batch.
- Searching: `message_matches(queryset, q)` keeps the lines whose message holds every word of
  `q`, through the generated `tsvector` column and its GIN index on PostgreSQL, and the FTS5
  table on SQLite (both made by migration 0001). Words are what the database's tokenizer
  calls words (letters and digits); case does not matter; no stemming, so `timeout` does not
  find `timeouts`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import islice
from typing import Any

from django.db import connection
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from apps.core import copytext
from apps.telemetry.models import LogLine

_COLUMNS = (
    "organization_id",
    "ts",
    "source",
    "level",
    "message",
    "attributes",
    "trace_id",
    "span_id",
)
_WORD = re.compile(r"\w+", re.UNICODE)
#: rows sent to COPY at a time
COPY_CHUNK = 200
#: words of a query used at most (a longer query is refused by the API)
MAX_QUERY_WORDS = 16


def logs_write(*, org_id: Any, rows: Iterable[tuple]) -> int:
    """Insert (ts, source, level, message, attributes, trace_id, span_id) rows in the caller's
    transaction; returns how many. `rows` may be an iterator: PostgreSQL gets them in chunks
    as they come, so it stores the first while the caller shapes the next."""
    if connection.vendor == "postgresql":
        columns = ", ".join(_COLUMNS)
        written = 0
        rows = iter(rows)
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY telemetry_logline ({columns}) FROM STDIN") as copy,
        ):
            while chunk := list(islice(rows, COPY_CHUNK)):
                copy.write(copy_text(org_id, chunk))
                written += len(chunk)
        return written
    lines = [
        LogLine(
            organization_id=org_id,
            ts=ts,
            source=source,
            level=level,
            message=message,
            attributes=attrs,
            trace_id=trace_id,
            span_id=span_id,
        )
        for ts, source, level, message, attrs, trace_id, span_id in rows
    ]
    LogLine.objects.bulk_create(lines, batch_size=500)
    return len(lines)


def copy_text(org_id: Any, rows: list[tuple]) -> bytes:
    """The rows as one block of COPY text (the columns of `_COLUMNS`): built with string
    operations only, which is several times cheaper per row than a value-by-value adapter.
    Sources, levels and hex ids never hold a character COPY escapes (validated upstream);
    messages and the attributes' JSON are escaped."""
    org = str(org_id)
    escape = copytext.escape
    as_json = copytext.json_value
    return "".join(
        [
            f"{org}\t{ts.isoformat()}\t{source}\t{level}\t{escape(message)}\t"
            f"{as_json(attrs)}\t{trace_id}\t{span_id}\n"
            for ts, source, level, message, attrs, trace_id, span_id in rows
        ]
    ).encode()


def query_words(q: str) -> list[str]:
    return _WORD.findall(q)


def message_matches(queryset: QuerySet, q: str) -> QuerySet:
    """Lines whose message contains every word of `q` (no words: no line)."""
    words = query_words(q)[:MAX_QUERY_WORDS]
    if not words:
        return queryset.none()
    # Only table names are formatted into the SQL; the words always go as a parameter.
    table = LogLine._meta.db_table
    if connection.vendor == "postgresql":
        # plainto_tsquery ANDs the words after the same 'simple' normalisation as the column.
        matches = RawSQL(  # noqa: S611
            f"{table}.search @@ plainto_tsquery('simple', %s)",
            [" ".join(words)],
            output_field=BooleanField(),
        )
        return queryset.filter(matches)
    # FTS5: each word quoted (so AND, OR, NEAR, * and column filters in user input are plain
    # words), all of them required.
    match = " ".join('"' + w.replace('"', '""') + '"' for w in words)
    found = RawSQL(f"SELECT rowid FROM {table}_fts WHERE {table}_fts MATCH %s", [match])  # noqa: S608, S611
    return queryset.filter(id__in=found)
