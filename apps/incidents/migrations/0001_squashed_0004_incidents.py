"""The incidents app's tables in their final shape: 0001_initial to 0004 in one migration. A
database that applied the four old migrations counts this one as applied (`replaces`)."""

import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    replaces = [
        ('incidents', '0001_initial'),
        ('incidents', '0002_rules_dependencies_windows'),
        ('incidents', '0003_actor_api_keys'),
        ('incidents', '0004_slo_burn_rule'),
    ]

    initial = True

    dependencies = [
        ('monitors', '0001_squashed_0009_monitors'),
        ('tenants', '0002_squashed_0003_plan_invitations_mfa'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Incident',
            fields=[
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('rule', models.CharField(max_length=40)),
                ('title', models.CharField(max_length=300)),
                ('description', models.TextField(blank=True)),
                ('severity', models.CharField(choices=[('info', 'Info'), ('warning', 'Warning'), ('error', 'Error'), ('critical', 'Critical')], max_length=10)),
                ('status', models.CharField(choices=[('triggered', 'Triggered'), ('acknowledged', 'Acknowledged'), ('resolved', 'Resolved')], default='triggered', max_length=16)),
                ('cause', models.JSONField(blank=True, default=dict)),
                ('occurrences', models.PositiveIntegerField(default=1)),
                ('suppressed', models.BooleanField(default=False)),
                ('suppressed_reason', models.CharField(blank=True, max_length=200)),
                ('opened_at', models.DateTimeField()),
                ('last_seen_at', models.DateTimeField()),
                ('acknowledged_at', models.DateTimeField(blank=True, null=True)),
                ('resolved_at', models.DateTimeField(blank=True, null=True)),
                ('escalation_step', models.PositiveSmallIntegerField(default=0)),
                ('escalation_repeats', models.PositiveSmallIntegerField(default=0)),
                ('next_escalation_at', models.DateTimeField(blank=True, null=True)),
                ('acknowledged_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('monitor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='incidents', to='monitors.monitor')),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='%(class)ss', to='tenants.organization')),
                ('resolved_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('acknowledged_by_key', models.JSONField(blank=True, editable=False, null=True)),
                ('resolved_by_key', models.JSONField(blank=True, editable=False, null=True)),
            ],
            options={
                'ordering': ['-opened_at'],
            },
        ),
        migrations.CreateModel(
            name='IncidentEvent',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('kind', models.CharField(choices=[('opened', 'Opened'), ('failed_again', 'Failed again'), ('notified', 'Notified'), ('escalated', 'Escalated'), ('acknowledged', 'Acknowledged'), ('note', 'Note added'), ('healing', 'Healing attempted'), ('resolved', 'Resolved'), ('flapping', 'Flapping'), ('suppressed', 'Suppressed')], max_length=16)),
                ('at', models.DateTimeField()),
                ('note', models.TextField(blank=True)),
                ('count', models.PositiveIntegerField(default=1)),
                ('data', models.JSONField(blank=True, default=dict)),
                ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('incident', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='events', to='incidents.incident')),
                ('organization', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.organization')),
                ('actor_key', models.JSONField(blank=True, editable=False, null=True)),
            ],
            options={
                'ordering': ['at', 'id'],
            },
        ),
        migrations.CreateModel(
            name='MaintenanceWindow',
            fields=[
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('name', models.CharField(max_length=200)),
                ('kind', models.CharField(choices=[('maintenance', 'Maintenance'), ('silence', 'Silence')], default='maintenance', max_length=12)),
                ('recurrence', models.CharField(choices=[('once', 'One-off'), ('cron', 'Cron expression'), ('weekly', 'Weekly')], default='once', max_length=8)),
                ('starts_at', models.DateTimeField(blank=True, null=True)),
                ('ends_at', models.DateTimeField(blank=True, null=True)),
                ('cron', models.CharField(blank=True, max_length=100)),
                ('weekdays', models.JSONField(blank=True, default=list)),
                ('start_time', models.TimeField(blank=True, null=True)),
                ('duration_minutes', models.PositiveIntegerField(blank=True, null=True)),
                ('timezone', models.CharField(default='UTC', max_length=64)),
                ('all_monitors', models.BooleanField(default=False)),
                ('tags', models.JSONField(blank=True, default=list)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('incident', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='incidents.incident')),
                ('monitors', models.ManyToManyField(blank=True, related_name='+', to='monitors.monitor')),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='%(class)ss', to='tenants.organization')),
                ('created_by_key', models.JSONField(blank=True, editable=False, null=True)),
            ],
            options={
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='MonitorDependency',
            fields=[
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('depends_on', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='dependents', to='monitors.monitor')),
                ('monitor', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='dependencies', to='monitors.monitor')),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='%(class)ss', to='tenants.organization')),
            ],
            options={
                'verbose_name_plural': 'monitor dependencies',
                'ordering': ['created_at'],
            },
        ),
        migrations.CreateModel(
            name='StatusChange',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('old', models.CharField(max_length=16)),
                ('new', models.CharField(max_length=16)),
                ('at', models.DateTimeField()),
                ('result_id', models.BigIntegerField(blank=True, null=True)),
                ('reason', models.CharField(blank=True, max_length=200)),
                ('monitor', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='monitors.monitor')),
                ('organization', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tenants.organization')),
            ],
            options={
                'ordering': ['-at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='AlertRule',
            fields=[
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('kind', models.CharField(choices=[('service_down', 'Service down'), ('critical_service_down', 'Critical service down'), ('consecutive_failures', 'Consecutive failures'), ('high_response_time', 'High response time'), ('low_uptime', 'Low uptime'), ('certificate_expiry', 'Certificate expiry'), ('service_recovery', 'Service recovery'), ('flapping', 'Flapping'), ('slo_burn', 'Error budget burn')], max_length=40)),
                ('enabled', models.BooleanField(default=True)),
                ('threshold', models.FloatField(blank=True, null=True)),
                ('window_seconds', models.PositiveIntegerField(blank=True, null=True)),
                ('severity', models.CharField(choices=[('info', 'Info'), ('warning', 'Warning'), ('error', 'Error'), ('critical', 'Critical')], max_length=10)),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='%(class)ss', to='tenants.organization')),
            ],
            options={
                'ordering': ['kind'],
                'constraints': [models.UniqueConstraint(fields=('organization', 'kind'), name='alert_rule_per_org')],
            },
        ),
        migrations.AddIndex(
            model_name='incident',
            index=models.Index(fields=['organization', 'status', 'opened_at'], name='incident_org_status'),
        ),
        migrations.AddIndex(
            model_name='incident',
            index=models.Index(fields=['monitor', 'opened_at'], name='incident_monitor_time'),
        ),
        migrations.AddIndex(
            model_name='incident',
            index=models.Index(condition=models.Q(('next_escalation_at__isnull', False)), fields=['next_escalation_at'], name='incident_escalation_due'),
        ),
        migrations.AddConstraint(
            model_name='incident',
            constraint=models.UniqueConstraint(condition=models.Q(('status__in', ['triggered', 'acknowledged'])), fields=('monitor', 'rule'), name='incident_one_open_per_monitor_rule'),
        ),
        migrations.AddIndex(
            model_name='incidentevent',
            index=models.Index(fields=['incident', 'at'], name='incident_event_time'),
        ),
        migrations.AddIndex(
            model_name='maintenancewindow',
            index=models.Index(fields=['organization', 'ends_at'], name='window_org_end'),
        ),
        migrations.AddConstraint(
            model_name='monitordependency',
            constraint=models.UniqueConstraint(fields=('monitor', 'depends_on'), name='dependency_unique'),
        ),
        migrations.AddConstraint(
            model_name='monitordependency',
            constraint=models.CheckConstraint(condition=models.Q(('monitor', models.F('depends_on')), _negated=True), name='dependency_not_self'),
        ),
        migrations.AddIndex(
            model_name='statuschange',
            index=models.Index(fields=['monitor', 'at'], name='status_change_monitor_time'),
        ),
    ]
