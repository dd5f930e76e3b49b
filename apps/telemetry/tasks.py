"""Telemetry's periodic work (declared in healthorch/schedules.py)."""

from __future__ import annotations

from celery import shared_task

from apps.telemetry import services


# Acknowledged on receipt: longer than the broker's visibility timeout; tomorrow's run deletes
# what a killed run left.
@shared_task(acks_late=False, ignore_result=True, time_limit=3600, soft_time_limit=3500)
def prune_old_logs() -> int:
    return services.logs_prune()


# Not acks_late, like the monitors' partition task: it is idempotent and beat runs it hourly.
@shared_task(acks_late=False, ignore_result=True, time_limit=300, soft_time_limit=280)
def ensure_log_partitions() -> int:
    return len(services.log_partitions_ensure())


# Not acks_late: the cursor is written with what it mined, so the next minute's run goes on
# from where this one committed.
@shared_task(acks_late=False, ignore_result=True, time_limit=120, soft_time_limit=110)
def mine_error_signatures() -> dict:
    return services.error_signatures_mine()
