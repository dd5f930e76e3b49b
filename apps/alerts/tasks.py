"""Thin Celery wrappers. The Notification rows are the truth; a task is only
a nudge, so losing one delays a delivery until the sweep, never loses it.
See docs/decisions/0010-thin-tasks.md.

Retries are not Celery's: the delivery service records each attempt and re-enqueues with its
own backoff, so `max_retries=0` and a redelivered message (acks_late) is harmless because the
row's compare-and-set claim lets one run send.
"""

from __future__ import annotations

from celery import shared_task

from apps.alerts.services import delivery, escalation, outbox


@shared_task(acks_late=True, ignore_result=True, max_retries=0, time_limit=60, soft_time_limit=45)
def deliver_notification(notification_id: str) -> str | None:
    return delivery.notification_deliver(notification_id=notification_id)


@shared_task(acks_late=True, ignore_result=True, max_retries=0, time_limit=60, soft_time_limit=45)
def flush_group(channel_id: str) -> None:
    outbox.group_flush(channel_id=channel_id)


@shared_task(acks_late=False, ignore_result=True, max_retries=0, time_limit=60, soft_time_limit=50)
def sweep_notifications() -> dict[str, int]:
    # Not acks_late: the next tick comes soon, and a redelivered sweep only repeats work.
    return delivery.notifications_sweep()


@shared_task(acks_late=False, ignore_result=True, max_retries=0, time_limit=60, soft_time_limit=50)
def escalate() -> int:
    return escalation.escalation_sweep()
