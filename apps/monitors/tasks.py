"""Thin Celery wrappers around the engine. The rows are the truth; tasks are nudges."""

from __future__ import annotations

from celery import shared_task

from apps.monitors import engine, heartbeats, rollups, watchdog


@shared_task(acks_late=False, ignore_result=True, time_limit=60, soft_time_limit=50)
def dispatch_due_checks() -> int:
    # Not acks_late: a redelivered dispatch is harmless but pointless (the next tick comes in
    # seconds), and the claimed monitors were already advanced.
    return engine.dispatch()


@shared_task(acks_late=True, ignore_result=True, time_limit=120, soft_time_limit=110)
def run_checks(
    monitor_ids: list[str], region: str = "default", rounds: dict[str, str] | None = None
) -> int:
    # acks_late: a worker that dies mid-batch leaves the message for another worker; the
    # batch's monitors are then checked once more, never skipped.
    return len(engine.run_monitors(monitor_ids, region=region, rounds=rounds))


@shared_task(acks_late=False, ignore_result=True, time_limit=60, soft_time_limit=50)
def sweep_overdue_heartbeats() -> int:
    return heartbeats.sweep_overdue()


@shared_task(acks_late=True, ignore_result=True, time_limit=1800, soft_time_limit=1700)
def rollup_results() -> None:
    rollups.rollup_recent()


@shared_task(acks_late=True, ignore_result=True, time_limit=3600, soft_time_limit=3500)
def prune_old_results() -> int:
    return rollups.prune_results()


@shared_task(acks_late=False, ignore_result=True, time_limit=30, soft_time_limit=25)
def self_heartbeat() -> bool:
    return watchdog.ping_self_heartbeat()
