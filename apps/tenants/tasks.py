from __future__ import annotations

import logging

from celery import shared_task

from apps.tenants import services

logger = logging.getLogger(__name__)


# Acknowledged on receipt: it may run longer than the broker's visibility timeout, so a late
# acknowledgement would hand it to a second worker while it runs; the next hourly
# run deletes what a killed one left.
@shared_task(acks_late=False, time_limit=120, soft_time_limit=100)
def purge_dead_api_keys() -> int:
    deleted = services.api_keys_purge_dead()
    logger.info("purged dead api keys", extra={"deleted": deleted})
    return deleted
