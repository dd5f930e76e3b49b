from __future__ import annotations

from celery import shared_task

from apps.billing import services


@shared_task(acks_late=True, time_limit=300, soft_time_limit=240, max_retries=0)
def billing_sweep() -> int:
    """Grace periods and cancelled periods that ended, comps that expired -> their plans."""
    return services.billing_sweep()
