"""Telemetry limits: metric samples and log lines per month, log retention.

The default plans get the values of apps.plans.defaults; a plan an operator created keeps
null (unlimited) until edited.
"""

from django.db import migrations, models

_NEW = ("metric_samples_per_month", "log_lines_per_month", "log_retention_days")

_CHOICES = [
    ("monitors", "Active monitors"),
    ("min_interval_seconds", "Minimum check interval (s)"),
    ("members", "Members"),
    ("retention_days", "Result retention (days)"),
    ("notifications_per_month", "Notifications per month"),
    ("api_requests_per_minute", "API requests per minute per key"),
    ("metric_samples_per_month", "Metric samples ingested per month"),
    ("log_lines_per_month", "Log lines ingested per month"),
    ("log_retention_days", "Log retention (days)"),
]


def set_defaults(apps, schema_editor):
    from apps.plans.defaults import DEFAULT_PLANS

    Plan = apps.get_model("plans", "Plan")
    for spec in DEFAULT_PLANS:
        Plan.objects.filter(code=spec["code"]).update(**{name: spec[name] for name in _NEW})


class Migration(migrations.Migration):
    dependencies = [("plans", "0003_account_security_features")]

    operations = [
        migrations.AddField(
            model_name="plan",
            name="metric_samples_per_month",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="plan",
            name="log_lines_per_month",
            field=models.PositiveBigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="plan",
            name="log_retention_days",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="limitoverride",
            name="limit",
            field=models.CharField(choices=_CHOICES, max_length=32),
        ),
        migrations.AlterField(
            model_name="usagecounter",
            name="metric",
            field=models.CharField(
                choices=[
                    ("checks_executed", "Checks executed"),
                    ("metric_samples", "Metric samples ingested"),
                    ("notifications_sent", "Notifications sent"),
                    ("log_lines", "Log lines ingested"),
                    ("api_requests", "API requests"),
                ],
                max_length=32,
            ),
        ),
        migrations.RunPython(set_defaults, migrations.RunPython.noop),
    ]
