"""Log lines become a table partitioned by day (PostgreSQL), as results and samples are.

On PostgreSQL `telemetry_logline` is rebuilt in this migration's transaction by
apps.core.partitions.rebuild, RANGE-partitioned on `ts`: a partition per day that has rows and
for the days ahead, a default partition, the rows copied, the identity kept, the primary key
widened to (id, ts), the (organization, source / level / -, ts, id) indexes re-made under their
Django names, and a BRIN index on `ts`. The generated `tsvector` column and its GIN index
(migration 0001) are taken off before and put back on the new parent after, so every partition
computes the column and has its own GIN index. Copying takes time on a big table (the tables
are locked meanwhile: a quiet hour's work, see docs/operations/retention.md).

On SQLite nothing happens: the embedded default keeps the plain table and its FTS5 index.

Marked `schema`, so the one-step build of an empty database runs it too; reversible
(backwards rebuilds a plain table with the rows it holds).
"""

from django.db import migrations

from apps.core import partitions

DAYS_AHEAD = 7
_DROP_SEARCH = [
    "DROP INDEX IF EXISTS log_search",
    "ALTER TABLE telemetry_logline DROP COLUMN IF EXISTS search",
]
# As migration 0001 made them; on a partitioned parent each partition gets both.
_ADD_SEARCH = [
    "ALTER TABLE telemetry_logline ADD COLUMN search tsvector"
    " GENERATED ALWAYS AS (to_tsvector('simple', message)) STORED",
    "CREATE INDEX log_search ON telemetry_logline USING gin (search)",
]


def _days():
    from django.utils import timezone

    today = timezone.now().date()
    return [today + partitions.DAY * n for n in range(-1, DAYS_AHEAD + 1)]


def _rebuild(apps, schema_editor, column):
    if not partitions.supported(schema_editor.connection):
        return
    for sql in _DROP_SEARCH:
        schema_editor.execute(sql)
    model = apps.get_model("telemetry", "LogLine")
    partitions.rebuild(schema_editor, model, column, days=_days() if column else ())
    for sql in _ADD_SEARCH:
        schema_editor.execute(sql)


def partition(apps, schema_editor):
    _rebuild(apps, schema_editor, "ts")


def unpartition(apps, schema_editor):
    _rebuild(apps, schema_editor, None)


class Migration(migrations.Migration):
    dependencies = [
        ("telemetry", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(partition, unpartition, hints={"schema": True}),
    ]
