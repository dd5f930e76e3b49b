"""Thin healing tasks: ids in, one idempotent service call (docs/decisions/0010-thin-tasks.md)."""

from __future__ import annotations

from celery import shared_task

from apps.healing import services


# The hard limit stays under the broker's visibility timeout (late acknowledgement).
@shared_task(acks_late=True, max_retries=0, time_limit=80, soft_time_limit=60)
def healing_execute(attempt_id: str) -> bool:
    # No retries: the action may have had an effect; the attempt records its outcome and the
    # engine decides again on the next failure (within max_attempts and the cooldown).
    return services.attempt_execute(attempt_id=attempt_id) is not None


@shared_task(acks_late=True, max_retries=0, time_limit=80, soft_time_limit=60)
def healing_verify(attempt_id: str) -> bool:
    return services.attempt_verify(attempt_id=attempt_id) is not None


# Acknowledged on receipt: it may run longer than the broker's visibility timeout, so a late
# acknowledgement would hand it to a second worker while it runs; the next sweep
# (15 s later) redoes what a killed one left.
@shared_task(acks_late=False, time_limit=240, soft_time_limit=200)
def healing_sweep() -> dict:
    return services.healing_sweep()


# Acknowledged on receipt: it may run longer than the broker's visibility timeout, so a late
# acknowledgement would hand it to a second worker while it runs; the next scan
# (5 minutes later) picks up where the cursor is.
@shared_task(acks_late=False, time_limit=240, soft_time_limit=200)
def healing_anomaly_scan() -> int:
    return services.anomaly_scan()
