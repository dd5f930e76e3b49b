"""Thin Celery wrappers around apps.reports.services."""

from __future__ import annotations

from celery import shared_task

from apps.reports import services


# Acknowledged on receipt: it may run longer than the broker's visibility timeout, so a late
# acknowledgement would hand it to a second worker while it runs; each report is
# sent once per period per organization, so the next daily run sends the ones a killed run left.
@shared_task(acks_late=False, soft_time_limit=1500, time_limit=1800, max_retries=0)
def send_scheduled_reports() -> int:
    """Mail each organization's last complete month's (or week's) SLA report, once."""
    return services.scheduled_reports_send()
