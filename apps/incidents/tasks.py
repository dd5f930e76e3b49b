"""Thin Celery wrappers around the incident sweeps. The rows are the truth; tasks are nudges."""

from __future__ import annotations

from celery import shared_task

from apps.incidents import errorsig, slo, sweeps


@shared_task(acks_late=False, ignore_result=True, time_limit=60, soft_time_limit=50)
def incidents_sweep() -> dict:
    # Not acks_late: every step is idempotent and the next tick comes in 30 s.
    return sweeps.sweep()


# Acknowledged on receipt: it may run longer than the broker's visibility timeout, so a late
# acknowledgement would hand it to a second worker while it runs; the next hourly
# run compares every monitor again.
@shared_task(acks_late=False, ignore_result=True, time_limit=900, soft_time_limit=850)
def low_uptime_sweep() -> dict:
    return sweeps.low_uptime_sweep()


# Not acks_late: the next minute's run reads the same results again.
@shared_task(acks_late=False, ignore_result=True, time_limit=60, soft_time_limit=50)
def slo_burn_sweep() -> dict:
    return slo.slo_burn_sweep()


# Not acks_late: the next minute's run reads the same counts again.
@shared_task(acks_late=False, ignore_result=True, time_limit=60, soft_time_limit=50)
def error_signature_sweep() -> dict:
    return errorsig.error_signature_sweep()
