"""Thin Celery wrappers around apps.reports.services."""

from __future__ import annotations

from celery import shared_task

from apps.reports import services


@shared_task(acks_late=True, soft_time_limit=1500, time_limit=1800, max_retries=0)
def send_scheduled_reports() -> int:
    """Mail each organization's last complete month's (or week's) SLA report, once."""
    return services.scheduled_reports_send()
