"""Every periodic job, declared once, each with a plain-English comment.

Beat runs with django-celery-beat's DatabaseScheduler, which copies these entries into its
tables at start (operators can then pause or retune them in the admin). Capabilities add their
sweeps here as they land: check dispatch, heartbeat overdue sweep, escalation, rollups.
"""

from __future__ import annotations

from celery.schedules import crontab

BEAT_SCHEDULE: dict[str, dict] = {
    # Every 2 seconds, claim the monitors whose next check is due and enqueue them per region.
    # Cheap when nothing is due (one indexed query), so the tick can be short.
    "dispatch-due-checks": {
        "task": "apps.monitors.tasks.dispatch_due_checks",
        "schedule": 2.0,
        "options": {"expires": 10},
    },
    # Every 15 seconds, mark heartbeat monitors whose deadline (period or cron + grace) passed.
    "sweep-overdue-heartbeats": {
        "task": "apps.monitors.tasks.sweep_overdue_heartbeats",
        "schedule": 15.0,
        "options": {"expires": 30},
    },
    # Five minutes past every hour, roll up the last two complete hours of results (a re-run
    # absorbs late results) and, after midnight, merge yesterday's hours into a day.
    "rollup-results": {
        "task": "apps.monitors.tasks.rollup_results",
        "schedule": crontab(minute=5),
    },
    # Twenty past every hour, make the day partitions of results, pings and samples a week
    # ahead (PostgreSQL; nothing to do on SQLite), so no insert waits on a new partition.
    "ensure-partitions": {
        "task": "apps.monitors.tasks.ensure_partitions",
        "schedule": crontab(minute=20),
    },
    # Daily at 03:30 UTC, delete raw results, pings and samples past each plan's retention:
    # whole day partitions past the longest retention, rows of the shorter plans (weekly, on
    # Sundays, every older day again for organizations that moved to a shorter plan).
    "prune-old-results": {
        "task": "apps.monitors.tasks.prune_old_results",
        "schedule": crontab(hour=3, minute=30),
    },
    # Twenty-five past every hour, make the log table's day partitions a week ahead
    # (PostgreSQL; nothing to do on SQLite).
    "ensure-log-partitions": {
        "task": "apps.telemetry.tasks.ensure_log_partitions",
        "schedule": crontab(minute=25),
    },
    # Daily at 03:45 UTC, delete log lines past each plan's log retention: whole day
    # partitions past the longest one on PostgreSQL, rows of the shorter plans.
    "prune-old-logs": {
        "task": "apps.telemetry.tasks.prune_old_logs",
        "schedule": crontab(hour=3, minute=45),
    },
    # Every minute, group the error lines logged since the last run into error signatures
    # (drain3 templates per organization and source, with hourly and per-minute counts).
    "mine-error-signatures": {
        "task": "apps.telemetry.tasks.mine_error_signatures",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    # Every minute, ping HEALTHORCH_SELF_HEARTBEAT_URL (if set) so an outside service notices
    # when beat or the workers stop.
    "self-heartbeat": {
        "task": "apps.monitors.tasks.self_heartbeat",
        "schedule": 60.0,
        "options": {"expires": 50},
    },
    # Every 5 minutes, move organizations whose payment grace period, cancelled billing period
    # or comp has ended to the plan they now pay for (usually free). Webhooks do the rest.
    "billing-sweep": {
        "task": "apps.billing.tasks.billing_sweep",
        "schedule": 300.0,
        "options": {"expires": 240},
    },
    # Every 30 seconds, start and end maintenance windows (monitors enter and leave
    # `maintenance`), resolve flapping incidents whose monitor settled, and resolve slow-response
    # and certificate incidents whose latest result is fine again.
    "incidents-sweep": {
        "task": "apps.incidents.tasks.incidents_sweep",
        "schedule": 30.0,
        "options": {"expires": 60},
    },
    # Ten past every hour (after the rollups at :05), compare each monitor's uptime over its
    # organization's low_uptime window with the threshold; open or resolve low_uptime incidents.
    "incidents-low-uptime": {
        "task": "apps.incidents.tasks.low_uptime_sweep",
        "schedule": crontab(minute=10),
    },
    # Every minute, compare each monitor that failed a check in the last 30 minutes (or has an
    # slo_burn incident open) with its error budget: open or resolve slo_burn incidents.
    "incidents-slo-burn": {
        "task": "apps.incidents.tasks.slo_burn_sweep",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    # Every minute, for organizations that turned the error_signature rule on, open incidents
    # for new error log signatures and rates far above a signature's own day before; resolve
    # those whose signature went quiet.
    "incidents-error-signatures": {
        "task": "apps.incidents.tasks.error_signature_sweep",
        "schedule": 60.0,
        "options": {"expires": 60},
    },
    # Every 15 seconds, move unacknowledged incidents to their next escalation step when its
    # delay is up (an acknowledgement or resolution stops the walk).
    "escalate-incidents": {
        "task": "apps.alerts.tasks.escalate",
        "schedule": 15.0,
        "options": {"expires": 30},
    },
    # Every 15 seconds, re-send notifications whose task was lost (a worker killed mid-send,
    # a broker hiccup) and flush grouped opened notices whose hold is over.
    "sweep-notifications": {
        "task": "apps.alerts.tasks.sweep_notifications",
        "schedule": 15.0,
        "options": {"expires": 30},
    },
    # Once an hour, delete API keys revoked or expired more than 30 days ago, so the key table
    # (read on every API-key request) stays small while recent revocations remain auditable.
    "purge-dead-api-keys": {
        "task": "apps.tenants.tasks.purge_dead_api_keys",
        "schedule": 3600.0,
    },
    # Every 15 seconds, catch up on healing work whose task was lost: verifications that are
    # due, pending attempts never picked up, and attempts whose worker died mid-action.
    "healing-sweep": {
        "task": "apps.healing.tasks.healing_sweep",
        "schedule": 15.0,
        "options": {"expires": 30},
    },
    # Daily at 06:15 UTC (after the night's rollups), mail each organization's SLA report for
    # its last complete month, or week if it chose weekly reports; once per period per
    # organization, to its owners who did not opt out.
    "send-scheduled-reports": {
        "task": "apps.reports.tasks.send_scheduled_reports",
        "schedule": crontab(hour=6, minute=15),
    },
    # Every 5 minutes, run the anomaly model over up to 50 monitors that are still up and have
    # a `use_anomaly` policy (ml_healing plans), round-robin, so a policy can act before a hard
    # threshold opens an incident.
    "healing-anomaly-scan": {
        "task": "apps.healing.tasks.healing_anomaly_scan",
        "schedule": 300.0,
        "options": {"expires": 290},
    },
}
