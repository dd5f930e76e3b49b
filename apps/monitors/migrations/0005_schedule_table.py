"""Move next_check_at out of the wide monitor row into a narrow MonitorSchedule table.

The dispatcher's claim rewrote 5,000 monitor rows per tick, each a copy of the whole row
(config included) with an insert into every index of monitors_monitor. Existing schedules move
over: unpaused scheduler-run monitors keep their next check, unpaused heartbeats their deadline
(paused monitors have nothing pending; resuming schedules them again). Also: ping_token is
unique only where set, and the ping rate limit's window moves into the monitor row.
"""

import django.db.models.deletion
from django.db import migrations, models

from apps.monitors.models import _default_regions

ACTIVE_KINDS = ["http", "tcp", "tls", "dns", "postgres", "redis"]


def _tables(apps):
    Monitor = apps.get_model("monitors", "Monitor")
    Schedule = apps.get_model("monitors", "MonitorSchedule")
    return Monitor._meta.db_table, Schedule._meta.db_table


def copy_schedules(apps, schema_editor):
    monitors, schedules = _tables(apps)
    qn = schema_editor.connection.ops.quote_name
    kinds = ", ".join(["%s"] * len(ACTIVE_KINDS))
    with schema_editor.connection.cursor() as cursor:
        # Identifiers come from model metadata; values are parameters.
        cursor.execute(
            f"INSERT INTO {qn(schedules)} "  # noqa: S608
            f"(monitor_id, lane, next_check_at, interval_seconds, regions) "
            f"SELECT id, CASE WHEN kind = %s THEN %s ELSE %s END, next_check_at, "
            f"interval_seconds, regions "
            f"FROM {qn(monitors)} WHERE next_check_at IS NOT NULL AND paused = %s "
            f"AND (kind = %s OR kind IN ({kinds}))",
            ["heartbeat", "heartbeat", "check", False, "heartbeat", *ACTIVE_KINDS],
        )


def copy_back(apps, schema_editor):
    monitors, schedules = _tables(apps)
    qn = schema_editor.connection.ops.quote_name
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(monitors)} SET next_check_at = (SELECT s.next_check_at "  # noqa: S608
            f"FROM {qn(schedules)} s WHERE s.monitor_id = {qn(monitors)}.id)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("monitors", "0004_alter_monitor_organization_alter_monitor_slug"),
        ("tenants", "0002_alter_organization_plan"),
    ]

    operations = [
        migrations.CreateModel(
            name="MonitorSchedule",
            fields=[
                (
                    "monitor",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="schedule",
                        serialize=False,
                        to="monitors.monitor",
                    ),
                ),
                (
                    "lane",
                    models.CharField(
                        choices=[
                            ("check", "Check run by the dispatcher"),
                            ("heartbeat", "Heartbeat deadline watched by the sweep"),
                        ],
                        max_length=16,
                    ),
                ),
                ("next_check_at", models.DateTimeField()),
                ("interval_seconds", models.PositiveIntegerField()),
                ("regions", models.JSONField(default=_default_regions)),
            ],
        ),
        migrations.RunPython(copy_schedules, copy_back),
        migrations.AddIndex(
            model_name="monitorschedule",
            index=models.Index(
                condition=models.Q(("lane", "check")), fields=["next_check_at"], name="schedule_due"
            ),
        ),
        migrations.AddIndex(
            model_name="monitorschedule",
            index=models.Index(
                condition=models.Q(("lane", "heartbeat")),
                fields=["next_check_at"],
                name="schedule_heartbeat_due",
            ),
        ),
        migrations.RemoveIndex(
            model_name="monitor",
            name="monitor_due",
        ),
        migrations.RemoveIndex(
            model_name="monitor",
            name="monitor_heartbeat_due",
        ),
        migrations.RemoveField(
            model_name="monitor",
            name="next_check_at",
        ),
        migrations.AddField(
            model_name="monitor",
            name="ping_window_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="monitor",
            name="ping_window_count",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.AlterField(
            model_name="monitor",
            name="ping_token",
            field=models.UUIDField(blank=True, default=None, null=True),
        ),
        migrations.AddConstraint(
            model_name="monitor",
            constraint=models.UniqueConstraint(
                condition=models.Q(("ping_token__isnull", False)),
                fields=("ping_token",),
                name="monitor_ping_token",
            ),
        ),
    ]
