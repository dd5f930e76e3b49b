"""Domain metrics (Prometheus), named as the dashboards and alerts expect.

The names are fixed: docs/decisions/0011-domain-metric-names.md.

With several processes (gunicorn workers, Celery pool), set PROMETHEUS_MULTIPROC_DIR so /metrics
merges every process's counters.
"""

from prometheus_client import Counter, Gauge, Histogram

monitor_checks_executed_total = Counter(
    "monitor_checks_executed_total", "Checks run, by monitor kind and outcome", ["kind", "outcome"]
)
monitor_check_duration_seconds = Histogram(
    "monitor_check_duration_seconds",
    "Wall time of one check as the checker measured it",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
scheduler_jobs_scheduled_total = Counter(
    "scheduler_jobs_scheduled_total", "Monitor checks claimed and enqueued by the dispatcher"
)
scheduler_lag_seconds = Histogram(
    "scheduler_lag_seconds",
    "How late a due check was when the dispatcher claimed it",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
scheduler_checks_skipped_total = Counter(
    "scheduler_checks_skipped_total",
    "Due checks skipped because the dispatcher fell a whole interval behind (an outage)",
)
# Alert on `time() - scheduler_last_dispatch_timestamp_seconds`: it stops moving when beat or
# the worker running the dispatch stops. "max" across processes: the latest dispatch anywhere.
scheduler_last_dispatch_timestamp_seconds = Gauge(
    "scheduler_last_dispatch_timestamp_seconds",
    "Unix time the dispatcher last ran (claimed due checks, or found none due)",
    multiprocess_mode="max",
)
incidents_created_total = Counter("incidents_created_total", "Incidents opened", ["severity"])
notifier_notifications_sent_total = Counter(
    "notifier_notifications_sent_total", "Notification delivery attempts", ["channel", "outcome"]
)
heartbeat_pings_total = Counter(
    "heartbeat_pings_total",
    "Pings answered by the fast ping path, by answer (recorded, not_found, limited, error)",
    ["answer"],
)
statuspage_emails_sent_total = Counter(
    "statuspage_emails_sent_total",
    "Status page subscriber emails, by kind (confirmation, update) and outcome (sent, failed)",
    ["kind", "outcome"],
)
statuspage_requests_total = Counter(
    "statuspage_requests_total",
    "Status page renderings served, by format (html, json, rss) and cache (hit, miss, private)",
    ["format", "cache"],
)
