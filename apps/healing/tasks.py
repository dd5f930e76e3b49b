"""Thin healing tasks: ids in, one idempotent service call (docs/decisions/0010-thin-tasks.md)."""

from __future__ import annotations

from celery import shared_task

from apps.healing import services


@shared_task(acks_late=True, max_retries=0, time_limit=90, soft_time_limit=60)
def healing_execute(attempt_id: str) -> bool:
    # No retries: the action may have had an effect; the attempt records its outcome and the
    # engine decides again on the next failure (within max_attempts and the cooldown).
    return services.attempt_execute(attempt_id=attempt_id) is not None


@shared_task(acks_late=True, max_retries=0, time_limit=90, soft_time_limit=60)
def healing_verify(attempt_id: str) -> bool:
    return services.attempt_verify(attempt_id=attempt_id) is not None


@shared_task(acks_late=True, time_limit=240, soft_time_limit=200)
def healing_sweep() -> dict:
    return services.healing_sweep()


@shared_task(acks_late=True, time_limit=240, soft_time_limit=200)
def healing_anomaly_scan() -> int:
    return services.anomaly_scan()
