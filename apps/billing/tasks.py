from __future__ import annotations

from celery import shared_task

from apps.billing import services


# Acknowledged on receipt: it may run longer than the broker's visibility timeout, so a late
# acknowledgement would hand it to a second worker while it runs; the next sweep
# (5 minutes later) moves whoever a killed one left.
@shared_task(acks_late=False, time_limit=300, soft_time_limit=240, max_retries=0)
def billing_sweep() -> int:
    """Grace periods and cancelled periods that ended, comps that expired -> their plans."""
    return services.billing_sweep()
