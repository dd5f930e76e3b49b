"""The plans app's tables in their final shape, and the default plans: 0001 to 0004 in one.

A database that applied the four old migrations counts this one as applied (`replaces`). The
seed runs after every column exists, so it writes each default plan whole (apps.plans.defaults):
0003's features added to existing plans and 0004's telemetry limits set on them are already in
those values, and are left out.
"""

import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models


def seed(apps, schema_editor):
    """The default plans. Existing rows (operators may have edited them) are left alone."""
    from apps.plans.defaults import DEFAULT_PLANS

    Plan = apps.get_model("plans", "Plan")
    # Keys a later migration adds as columns are not columns yet when this runs.
    known = {f.name for f in Plan._meta.get_fields()}
    for spec in DEFAULT_PLANS:
        defaults = {k: v for k, v in spec.items() if k != "code" and k in known}
        Plan.objects.get_or_create(code=spec["code"], defaults=defaults)


class Migration(migrations.Migration):

    replaces = [
        ('plans', '0001_initial'),
        ('plans', '0002_seed_plans'),
        ('plans', '0003_account_security_features'),
        ('plans', '0004_telemetry_limits'),
    ]

    initial = True

    dependencies = [
        ('tenants', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Plan',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('code', models.SlugField(max_length=32, unique=True)),
                ('name', models.CharField(max_length=64)),
                ('monthly_price_cents', models.PositiveIntegerField(default=0)),
                ('currency', models.CharField(default='usd', max_length=3)),
                ('stripe_price_id', models.CharField(blank=True, max_length=255)),
                ('features', models.JSONField(blank=True, default=list)),
                ('sort_order', models.PositiveSmallIntegerField(default=0)),
                ('is_public', models.BooleanField(default=True)),
                ('monitors', models.PositiveIntegerField(blank=True, null=True)),
                ('min_interval_seconds', models.PositiveIntegerField(default=300)),
                ('members', models.PositiveIntegerField(blank=True, null=True)),
                ('retention_days', models.PositiveIntegerField(blank=True, null=True)),
                ('notifications_per_month', models.PositiveIntegerField(blank=True, null=True)),
                ('api_requests_per_minute', models.PositiveIntegerField(blank=True, null=True)),
                ('sla_availability_pct', models.DecimalField(decimal_places=3, default=99, max_digits=6)),
                ('sla_response_ms', models.PositiveIntegerField(default=1000)),
                ('sla_error_pct', models.DecimalField(decimal_places=2, default=2, max_digits=5)),
                ('metric_samples_per_month', models.PositiveBigIntegerField(blank=True, null=True)),
                ('log_lines_per_month', models.PositiveBigIntegerField(blank=True, null=True)),
                ('log_retention_days', models.PositiveIntegerField(blank=True, null=True)),
            ],
            options={
                'ordering': ['sort_order', 'monthly_price_cents'],
            },
        ),
        migrations.CreateModel(
            name='PlanChange',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('from_plan', models.CharField(max_length=32)),
                ('to_plan', models.CharField(max_length=32)),
                ('source', models.CharField(help_text='admin, api, stripe event id, command...', max_length=64)),
                ('reason', models.CharField(blank=True, max_length=255)),
                ('effects', models.JSONField(blank=True, default=dict)),
                ('created_at', models.DateTimeField(auto_now_add=True, db_index=True)),
                ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='plan_changes', to='tenants.organization')),
            ],
            options={
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='LimitOverride',
            fields=[
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('limit', models.CharField(choices=[('monitors', 'Active monitors'), ('min_interval_seconds', 'Minimum check interval (s)'), ('members', 'Members'), ('retention_days', 'Result retention (days)'), ('notifications_per_month', 'Notifications per month'), ('api_requests_per_minute', 'API requests per minute per key'), ('metric_samples_per_month', 'Metric samples ingested per month'), ('log_lines_per_month', 'Log lines ingested per month'), ('log_retention_days', 'Log retention (days)')], max_length=32)),
                ('value', models.PositiveIntegerField(blank=True, help_text='Empty = unlimited.', null=True)),
                ('reason', models.CharField(max_length=255)),
                ('expires_at', models.DateTimeField(blank=True, null=True)),
                ('created_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='%(class)ss', to='tenants.organization')),
            ],
            options={
                'ordering': ['-created_at'],
                'constraints': [models.UniqueConstraint(fields=('organization', 'limit'), name='override_one_per_limit')],
            },
        ),
        migrations.CreateModel(
            name='UsageCounter',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('period_start', models.DateField()),
                ('metric', models.CharField(choices=[('checks_executed', 'Checks executed'), ('metric_samples', 'Metric samples ingested'), ('notifications_sent', 'Notifications sent'), ('log_lines', 'Log lines ingested'), ('api_requests', 'API requests')], max_length=32)),
                ('value', models.BigIntegerField(default=0)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='usage_counters', to='tenants.organization')),
            ],
            options={
                'ordering': ['-period_start', 'metric'],
                'constraints': [models.UniqueConstraint(fields=('organization', 'period_start', 'metric'), name='usage_one_row_per_metric')],
            },
        ),
        # A seed: the one-step build of an empty database runs it too (apps.core.schema_build).
        migrations.RunPython(seed, migrations.RunPython.noop, hints={'seed': True}),
    ]
