"""The healing app's tables in their final shape: 0001_initial and 0002 in one migration. A
database that applied both counts this one as applied (`replaces`)."""

import apps.healing.models
import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    replaces = [
        ('healing', '0001_initial'),
        ('healing', '0002_actor_api_keys'),
    ]

    initial = True

    dependencies = [
        ('incidents', '0001_squashed_0004_incidents'),
        ('monitors', '0001_squashed_0009_monitors'),
        ('tenants', '0002_squashed_0003_plan_invitations_mfa'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='HealingPolicy',
            fields=[
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('name', models.CharField(max_length=200)),
                ('enabled', models.BooleanField(default=True)),
                ('tag', models.CharField(blank=True, max_length=64)),
                ('action_kind', models.CharField(max_length=32)),
                ('action_config', models.JSONField(blank=True, default=dict)),
                ('action_secret', models.TextField(blank=True, default='')),
                ('rules', models.JSONField(default=apps.healing.models._default_rules)),
                ('severities', models.JSONField(default=apps.healing.models._default_severities)),
                ('max_attempts', models.PositiveSmallIntegerField(default=3)),
                ('cooldown_minutes', models.PositiveIntegerField(default=5)),
                ('verify_after_seconds', models.PositiveIntegerField(default=60)),
                ('escalate_on_failure', models.BooleanField(default=True)),
                ('auto', models.BooleanField(default=False)),
                ('use_anomaly', models.BooleanField(default=False)),
                ('priority', models.SmallIntegerField(default=100)),
                ('monitor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='healing_policies', to='monitors.monitor')),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='%(class)ss', to='tenants.organization')),
            ],
            options={
                'verbose_name_plural': 'healing policies',
                'ordering': ['priority', 'created_at', 'id'],
            },
        ),
        migrations.CreateModel(
            name='HealingAttempt',
            fields=[
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('decision', models.CharField(choices=[('execute', 'Execute the action'), ('suggest', 'Suggest to a person'), ('notify_only', 'Notify only, never act'), ('skip', 'Do nothing')], max_length=12)),
                ('path', models.CharField(default='rules', max_length=8)),
                ('condition', models.CharField(blank=True, max_length=40)),
                ('action_kind', models.CharField(blank=True, max_length=32)),
                ('explanation', models.TextField()),
                ('inputs', models.JSONField(blank=True, default=dict)),
                ('status', models.CharField(choices=[('suggested', 'Suggested'), ('skipped', 'Skipped'), ('pending', 'Pending'), ('running', 'Running'), ('succeeded', 'Action succeeded'), ('failed', 'Action failed')], max_length=12)),
                ('automatic', models.BooleanField(default=False)),
                ('outcome', models.JSONField(blank=True, default=dict)),
                ('error', models.CharField(blank=True, max_length=500)),
                ('started_at', models.DateTimeField(blank=True, null=True)),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('duration_ms', models.PositiveIntegerField(blank=True, null=True)),
                ('verification', models.CharField(choices=[('none', 'Not applicable'), ('pending', 'Waiting'), ('checking', 'Checking'), ('recovered', 'Recovered'), ('not_recovered', 'Not recovered')], default='none', max_length=14)),
                ('verify_due_at', models.DateTimeField(blank=True, null=True)),
                ('verified_at', models.DateTimeField(blank=True, null=True)),
                ('escalated', models.BooleanField(default=False)),
                ('incident', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='healing_attempts', to='incidents.incident')),
                ('monitor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='healing_attempts', to='monitors.monitor')),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='%(class)ss', to='tenants.organization')),
                ('requested_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('policy', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='attempts', to='healing.healingpolicy')),
                ('requested_by_key', models.JSONField(blank=True, editable=False, null=True)),
            ],
            options={
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.AddIndex(
            model_name='healingpolicy',
            index=models.Index(fields=['organization', 'enabled'], name='healing_policy_org'),
        ),
        migrations.AddConstraint(
            model_name='healingpolicy',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('monitor__isnull', False), ('tag', '')), models.Q(('monitor__isnull', True), models.Q(('tag', ''), _negated=True)), _connector='OR'), name='healing_policy_monitor_xor_tag'),
        ),
        migrations.AddConstraint(
            model_name='healingpolicy',
            constraint=models.CheckConstraint(condition=models.Q(('max_attempts__gte', 1)), name='healing_policy_attempts_positive'),
        ),
        migrations.AddIndex(
            model_name='healingattempt',
            index=models.Index(fields=['organization', 'created_at'], name='healing_attempt_org_time'),
        ),
        migrations.AddIndex(
            model_name='healingattempt',
            index=models.Index(fields=['incident', 'status'], name='healing_attempt_incident'),
        ),
        migrations.AddIndex(
            model_name='healingattempt',
            index=models.Index(fields=['monitor', 'created_at'], name='healing_attempt_monitor_time'),
        ),
        migrations.AddIndex(
            model_name='healingattempt',
            index=models.Index(condition=models.Q(('verification', 'pending')), fields=['verify_due_at'], name='healing_attempt_verify_due'),
        ),
    ]
