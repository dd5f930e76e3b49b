"""Thin Celery wrappers: ids in, one service call, the rows are the truth.

See docs/decisions/0010-thin-tasks.md.
"""

from __future__ import annotations

from celery import shared_task

from apps.statuspages import emails


@shared_task(acks_late=True, ignore_result=True, max_retries=0, time_limit=60, soft_time_limit=45)
def send_confirmation(subscriber_id: str) -> bool:
    return emails.confirmation_send(subscriber_id=subscriber_id)


# Not retried by Celery: the update is claimed before sending, so a retry would send nothing;
# a failed batch is logged with the update id. For the same reason it is acknowledged on
# receipt: it may run longer than the broker's visibility timeout, and a redelivered copy
# would find the update already claimed.
@shared_task(
    acks_late=False, ignore_result=True, max_retries=0, time_limit=300, soft_time_limit=280
)
def send_incident_update(update_id: str) -> int:
    return emails.update_fan_out(update_id=update_id)
