"""Every periodic job, declared once, each with a plain-English comment.

Beat runs with django-celery-beat's DatabaseScheduler, which copies these entries into its
tables at start (operators can then pause or retune them in the admin). Capabilities add their
sweeps here as they land: check dispatch, heartbeat overdue sweep, escalation, rollups.
"""

from __future__ import annotations

BEAT_SCHEDULE: dict[str, dict] = {
    # Once an hour, delete API keys revoked or expired more than 30 days ago, so the key table
    # (read on every API-key request) stays small while recent revocations remain auditable.
    "purge-dead-api-keys": {
        "task": "apps.tenants.tasks.purge_dead_api_keys",
        "schedule": 3600.0,
    },
}
