"""Results, heartbeat pings and metric samples become tables partitioned by day (PostgreSQL).

On PostgreSQL each table is rebuilt in this migration's transaction as a RANGE-partitioned
table on its time column (apps.core.partitions.rebuild): partitions for every day that has
rows and the days ahead, a default partition, the rows copied over, the identity sequence
kept, the primary key widened to (id, time) as partitioning requires, foreign keys and indexes
re-made under their Django names, and a BRIN index on the time column. No foreign key points
at these tables, so nothing else changes. Copying takes time on a big table (figures in
docs/operations/retention.md); the tables are locked meanwhile, so run it in a quiet hour.

On SQLite nothing happens: the embedded default keeps plain tables and deletes rows by age.

The step is marked `schema` so the one-step build of an empty database runs it too, after
creating the tables from the final state: both paths end with the same partitioned layout.
Reversible: backwards rebuilds plain tables with the rows they hold.
"""

from django.db import migrations

from apps.core import partitions

# The model, its time column. Kept here rather than imported, as migrations freeze their facts.
TABLES = (
    ("CheckResult", "checked_at"),
    ("HeartbeatPing", "received_at"),
    ("MetricSample", "ts"),
)
DAYS_AHEAD = 7


def _days():
    from django.utils import timezone

    today = timezone.now().date()
    return [today + partitions.DAY * n for n in range(-1, DAYS_AHEAD + 1)]


def partition(apps, schema_editor):
    if not partitions.supported(schema_editor.connection):
        return
    for name, column in TABLES:
        model = apps.get_model("monitors", name)
        partitions.rebuild(schema_editor, model, column, days=_days())


def unpartition(apps, schema_editor):
    if not partitions.supported(schema_editor.connection):
        return
    for name, _column in TABLES:
        partitions.rebuild(schema_editor, apps.get_model("monitors", name), None)


class Migration(migrations.Migration):
    dependencies = [
        ("monitors", "0008_monitor_slo"),
    ]

    operations = [
        migrations.RunPython(partition, unpartition, hints={"schema": True}),
    ]
