"""Thin Celery wrappers around the engine. The rows are the truth; tasks are nudges."""

from __future__ import annotations

from celery import shared_task

from apps.monitors import engine, heartbeats, retention, rollups, watchdog


@shared_task(acks_late=False, ignore_result=True, time_limit=60, soft_time_limit=50)
def dispatch_due_checks() -> int:
    # Not acks_late: a redelivered dispatch is harmless but pointless (the next tick comes in
    # seconds), and the claimed monitors were already advanced.
    return engine.dispatch()


# A batch runs its checks concurrently, each within its timeout (60 s at most), so 75 s is
# ample; it must stay under the broker's visibility timeout (CELERY_VISIBILITY_TIMEOUT_SECONDS)
# or a batch still running would be handed to a second worker.
@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    time_limit=75,
    soft_time_limit=70,
)
def run_checks(
    monitor_ids: list[str], region: str = "default", rounds: dict[str, str] | None = None
) -> int:
    # acks_late: a worker that dies mid-batch leaves the message unacknowledged; on Redis it
    # goes back to the queue after the visibility timeout and another worker checks the batch
    # again (its monitors are checked once more, never skipped). A pool process killed under
    # a live worker (the OOM killer's usual pick) would otherwise count as a failure and be
    # acknowledged; reject_on_worker_lost puts the batch back at once instead. (A batch that
    # killed its process every time would come back every time; the worker logs each lost
    # process.) The embedded filesystem broker has no visibility
    # timeout: there a killed worker's batch is lost and its monitors are checked at their
    # next due time (they were already advanced when claimed).
    return len(engine.run_monitors(monitor_ids, region=region, rounds=rounds))


@shared_task(acks_late=False, ignore_result=True, time_limit=60, soft_time_limit=50)
def sweep_overdue_heartbeats() -> int:
    return heartbeats.sweep_overdue()


# Acknowledged on receipt: longer than the broker's visibility timeout, and the next hourly
# run redoes the last two hours anyway.
@shared_task(acks_late=False, ignore_result=True, time_limit=1800, soft_time_limit=1700)
def rollup_results() -> None:
    rollups.rollup_recent()


# Acknowledged on receipt: longer than the broker's visibility timeout; tomorrow's run
# deletes what a killed run left.
@shared_task(acks_late=False, ignore_result=True, time_limit=3600, soft_time_limit=3500)
def prune_old_results() -> int:
    return rollups.prune_results()


# Acknowledged on receipt: idempotent, and the next hourly run makes whatever this one missed.
@shared_task(acks_late=False, ignore_result=True, time_limit=300, soft_time_limit=280)
def ensure_partitions() -> int:
    return len(retention.partitions_ensure())


@shared_task(acks_late=False, ignore_result=True, time_limit=30, soft_time_limit=25)
def self_heartbeat() -> bool:
    return watchdog.ping_self_heartbeat()
