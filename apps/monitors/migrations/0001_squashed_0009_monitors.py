"""The monitors app's tables in their final shape: 0001_initial to 0009 in one migration.

A database that applied all nine old migrations counts this one as applied (`replaces`); one
part-way through them must finish them on the release before this one (docs/operations/
deploying.md). Left out, as a new database has no rows for them: 0005's copy of each
monitor's next check into the schedule table.

Kept, as the last step: results, heartbeat pings and metric samples become tables
partitioned by day on PostgreSQL (apps.core.partitions.rebuild; docs/decisions/0018): a
partition for every day that has rows and the days ahead, a default partition, the primary key
widened to (id, time), foreign keys and indexes re-made under their Django names, a BRIN index
on the time column. On SQLite nothing happens. The step is marked `schema`, so the one-step
build of an empty database (apps.core.schema_build) runs it too. Reversible: backwards
rebuilds plain tables with the rows they hold.
"""

import apps.monitors.models
import django.db.models.deletion
import uuid
from django.db import migrations, models

from apps.core import partitions


# The model, its time column. Kept here rather than imported, as migrations freeze their facts.
PARTITIONED = (
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
    # The tables were made by this migration: their foreign keys and indexes wait in the
    # editor's deferred statements. Made now, the rebuild re-makes them on the partitioned
    # table; left waiting, they would be made a second time when the migration ends.
    for sql in schema_editor.deferred_sql:
        schema_editor.execute(sql)
    schema_editor.deferred_sql.clear()
    for name, column in PARTITIONED:
        model = apps.get_model("monitors", name)
        partitions.rebuild(schema_editor, model, column, days=_days())


def unpartition(apps, schema_editor):
    if not partitions.supported(schema_editor.connection):
        return
    for name, _column in PARTITIONED:
        partitions.rebuild(schema_editor, apps.get_model("monitors", name), None)


class Migration(migrations.Migration):

    replaces = [
        ('monitors', '0001_initial'),
        ('monitors', '0002_resultrollup'),
        ('monitors', '0003_checkresult_round_at'),
        ('monitors', '0004_alter_monitor_organization_alter_monitor_slug'),
        ('monitors', '0005_schedule_table'),
        ('monitors', '0006_rollup_sla_accounting_and_error_rollup'),
        ('monitors', '0007_more_check_kinds'),
        ('monitors', '0008_monitor_slo'),
        ('monitors', '0009_partition_results_by_day'),
    ]

    initial = True

    dependencies = [
        ('tenants', '0002_squashed_0003_plan_invitations_mfa'),
    ]

    operations = [
        migrations.CreateModel(
            name='Monitor',
            fields=[
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('name', models.CharField(max_length=200)),
                ('slug', models.SlugField(db_index=False, max_length=100)),
                ('kind', models.CharField(choices=[('http', 'HTTP(S)'), ('tcp', 'TCP port'), ('tls', 'TLS certificate'), ('dns', 'DNS record'), ('postgres', 'PostgreSQL'), ('redis', 'Redis'), ('smtp', 'SMTP mail server'), ('icmp', 'ICMP ping'), ('grpc', 'gRPC health'), ('kubernetes', 'Kubernetes'), ('heartbeat', 'Heartbeat (cron job)'), ('metric', 'Metric threshold')], max_length=16)),
                ('config', models.JSONField(blank=True, default=dict)),
                ('secret', models.TextField(blank=True, default='')),
                ('interval_seconds', models.PositiveIntegerField(default=300)),
                ('timeout_seconds', models.FloatField(default=10)),
                ('failure_threshold', models.PositiveSmallIntegerField(default=2)),
                ('recovery_threshold', models.PositiveSmallIntegerField(default=1)),
                ('regions', models.JSONField(default=apps.monitors.models._default_regions)),
                ('quorum', models.PositiveSmallIntegerField(default=1)),
                ('tags', models.JSONField(blank=True, default=list)),
                ('critical', models.BooleanField(default=False)),
                ('expected_response_time_ms', models.PositiveIntegerField(blank=True, null=True)),
                ('paused', models.BooleanField(default=False)),
                ('paused_reason', models.CharField(blank=True, max_length=255)),
                ('status', models.CharField(choices=[('unknown', 'Unknown'), ('up', 'Up'), ('degraded', 'Degraded'), ('down', 'Down'), ('paused', 'Paused'), ('maintenance', 'Maintenance')], default='unknown', max_length=16)),
                ('status_changed_at', models.DateTimeField(blank=True, null=True)),
                ('consecutive_failures', models.PositiveIntegerField(default=0)),
                ('consecutive_successes', models.PositiveIntegerField(default=0)),
                ('last_checked_at', models.DateTimeField(blank=True, null=True)),
                ('last_up_at', models.DateTimeField(blank=True, null=True)),
                ('ping_token', models.UUIDField(blank=True, default=None, null=True)),
                ('last_ping_at', models.DateTimeField(blank=True, null=True)),
                ('last_start_at', models.DateTimeField(blank=True, null=True)),
                ('organization', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='monitors', to='tenants.organization')),
                ('ping_window_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('ping_window_count', models.PositiveIntegerField(default=0, editable=False)),
                ('slo_target_pct', models.DecimalField(blank=True, decimal_places=3, max_digits=6, null=True)),
                ('slo_window_days', models.PositiveSmallIntegerField(choices=[(28, '28 days'), (30, '30 days')], default=30)),
            ],
            options={
                'ordering': ['name'],
            },
        ),
        migrations.CreateModel(
            name='HeartbeatPing',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('kind', models.CharField(choices=[('success', 'Success'), ('start', 'Start'), ('fail', 'Fail'), ('exit', 'Exit code')], max_length=8)),
                ('exit_code', models.SmallIntegerField(blank=True, null=True)),
                ('received_at', models.DateTimeField()),
                ('duration_ms', models.FloatField(blank=True, null=True)),
                ('remote_addr', models.GenericIPAddressField(blank=True, null=True)),
                ('user_agent', models.CharField(blank=True, max_length=200)),
                ('body', models.TextField(blank=True)),
                ('organization', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.organization')),
                ('monitor', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='pings', to='monitors.monitor')),
            ],
            options={
                'ordering': ['-received_at'],
            },
        ),
        migrations.CreateModel(
            name='ErrorRollup',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('bucket_start', models.DateTimeField()),
                ('outcome', models.CharField(max_length=16)),
                ('error_class', models.CharField(blank=True, max_length=32)),
                ('message', models.CharField(blank=True, max_length=200)),
                ('count', models.PositiveIntegerField(default=0)),
                ('first_seen', models.DateTimeField()),
                ('last_seen', models.DateTimeField()),
                ('monitor', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='error_rollups', to='monitors.monitor')),
                ('organization', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.organization')),
            ],
            options={
                'ordering': ['-bucket_start'],
            },
        ),
        migrations.CreateModel(
            name='CheckResult',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('checked_at', models.DateTimeField()),
                ('region', models.CharField(default='default', max_length=32)),
                ('outcome', models.CharField(max_length=16)),
                ('response_time_ms', models.FloatField(blank=True, null=True)),
                ('status_code', models.PositiveSmallIntegerField(blank=True, null=True)),
                ('error_class', models.CharField(blank=True, max_length=32)),
                ('error_message', models.CharField(blank=True, max_length=500)),
                ('timings', models.JSONField(blank=True, default=dict)),
                ('assertion_failures', models.JSONField(blank=True, default=list)),
                ('cert_expires_at', models.DateTimeField(blank=True, null=True)),
                ('organization', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.organization')),
                ('monitor', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='results', to='monitors.monitor')),
                ('round_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'ordering': ['-checked_at'],
            },
        ),
        migrations.CreateModel(
            name='ResultRollup',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('granularity', models.CharField(choices=[('hour', 'Hour'), ('day', 'Day')], max_length=4)),
                ('bucket_start', models.DateTimeField()),
                ('total', models.PositiveIntegerField(default=0)),
                ('up', models.PositiveIntegerField(default=0)),
                ('degraded', models.PositiveIntegerField(default=0)),
                ('down', models.PositiveIntegerField(default=0)),
                ('inconclusive', models.PositiveIntegerField(default=0)),
                ('latency_count', models.PositiveIntegerField(default=0)),
                ('latency_sum_ms', models.FloatField(default=0)),
                ('latency_min_ms', models.FloatField(blank=True, null=True)),
                ('latency_max_ms', models.FloatField(blank=True, null=True)),
                ('p50_ms', models.FloatField(blank=True, null=True)),
                ('p95_ms', models.FloatField(blank=True, null=True)),
                ('p99_ms', models.FloatField(blank=True, null=True)),
                ('histogram', models.JSONField(default=dict)),
                ('monitor', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='rollups', to='monitors.monitor')),
                ('organization', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.organization')),
                ('dependency_down', models.PositiveIntegerField(default=0)),
                ('maint_degraded', models.PositiveIntegerField(default=0)),
                ('maint_down', models.PositiveIntegerField(default=0)),
                ('maint_inconclusive', models.PositiveIntegerField(default=0)),
                ('maint_up', models.PositiveIntegerField(default=0)),
                ('maintenance_seconds', models.FloatField(default=0)),
            ],
            options={
                'ordering': ['-bucket_start'],
            },
        ),
        migrations.CreateModel(
            name='MetricSample',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('source', models.CharField(max_length=64)),
                ('name', models.CharField(max_length=64)),
                ('value', models.FloatField()),
                ('ts', models.DateTimeField()),
                ('organization', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.organization')),
            ],
            options={
                'ordering': ['-ts'],
                'indexes': [models.Index(fields=['organization', 'source', 'name', 'ts'], name='sample_series')],
            },
        ),
        migrations.CreateModel(
            name='MonitorSchedule',
            fields=[
                ('monitor', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='schedule', serialize=False, to='monitors.monitor')),
                ('lane', models.CharField(choices=[('check', 'Check run by the dispatcher'), ('heartbeat', 'Heartbeat deadline watched by the sweep')], max_length=16)),
                ('next_check_at', models.DateTimeField()),
                ('interval_seconds', models.PositiveIntegerField()),
                ('regions', models.JSONField(default=apps.monitors.models._default_regions)),
            ],
            options={
                'indexes': [models.Index(condition=models.Q(('lane', 'check')), fields=['next_check_at'], name='schedule_due'), models.Index(condition=models.Q(('lane', 'heartbeat')), fields=['next_check_at'], name='schedule_heartbeat_due')],
            },
        ),
        migrations.AddIndex(
            model_name='monitor',
            index=models.Index(fields=['organization', 'status'], name='monitor_org_status'),
        ),
        migrations.AddConstraint(
            model_name='monitor',
            constraint=models.UniqueConstraint(fields=('organization', 'slug'), name='monitor_slug_per_org'),
        ),
        migrations.AddConstraint(
            model_name='monitor',
            constraint=models.UniqueConstraint(condition=models.Q(('ping_token__isnull', False)), fields=('ping_token',), name='monitor_ping_token'),
        ),
        migrations.AddConstraint(
            model_name='monitor',
            constraint=models.CheckConstraint(condition=models.Q(('quorum__gte', 1)), name='monitor_quorum_positive'),
        ),
        migrations.AddConstraint(
            model_name='monitor',
            constraint=models.CheckConstraint(condition=models.Q(('failure_threshold__gte', 1), ('recovery_threshold__gte', 1)), name='monitor_thresholds_positive'),
        ),
        migrations.AddIndex(
            model_name='heartbeatping',
            index=models.Index(fields=['monitor', 'received_at'], name='ping_monitor_time'),
        ),
        migrations.AddIndex(
            model_name='errorrollup',
            index=models.Index(fields=['organization', 'bucket_start'], name='error_rollup_org_time'),
        ),
        migrations.AddIndex(
            model_name='errorrollup',
            index=models.Index(fields=['monitor', 'bucket_start'], name='error_rollup_monitor_time'),
        ),
        migrations.AddIndex(
            model_name='errorrollup',
            index=models.Index(fields=['bucket_start'], name='error_rollup_time'),
        ),
        migrations.AddIndex(
            model_name='checkresult',
            index=models.Index(fields=['monitor', 'checked_at'], name='result_monitor_time'),
        ),
        migrations.AddIndex(
            model_name='checkresult',
            index=models.Index(fields=['organization', 'checked_at'], name='result_org_time'),
        ),
        migrations.AddIndex(
            model_name='resultrollup',
            index=models.Index(fields=['organization', 'granularity', 'bucket_start'], name='rollup_org_time'),
        ),
        migrations.AddConstraint(
            model_name='resultrollup',
            constraint=models.UniqueConstraint(fields=('monitor', 'granularity', 'bucket_start'), name='rollup_one_per_bucket'),
        ),
        migrations.RunPython(partition, unpartition, hints={'schema': True}),
    ]
