"""Helpers for status page tests: monitors made through the monitors services, daily and
hourly rollups written as the rollup job writes them, pages and sections through our services,
incidents written as rows directly (as tests/alerts/support.py does, so these tests do not
depend on the incidents services being refactored), and Celery in eager mode (the real task code runs in this process; the broker path is the
project's usual one, exercised by tests/core/test_celery.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from apps.incidents.models import Incident, IncidentStatus
from apps.monitors.models import Granularity, ResultRollup
from apps.statuspages import services
from tests.factories import make_monitor


def midnight(days_ago: int = 0) -> datetime:
    today = timezone.now().astimezone(UTC).date() - timedelta(days=days_ago)
    return datetime(today.year, today.month, today.day, tzinfo=UTC)


def daily(monitor, days_ago: int, up: int, down: int = 0, degraded: int = 0) -> None:
    ResultRollup.objects.create(
        monitor=monitor,
        organization_id=monitor.organization_id,
        granularity=Granularity.DAY,
        bucket_start=midnight(days_ago),
        total=up + down + degraded,
        up=up,
        down=down,
        degraded=degraded,
    )


def hourly(monitor, hours_ago: int, up: int, down: int = 0, ms: float = 120.0) -> None:
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours_ago)
    from apps.monitors.rollups import bucket_of

    ResultRollup.objects.create(
        monitor=monitor,
        organization_id=monitor.organization_id,
        granularity=Granularity.HOUR,
        bucket_start=start,
        total=up + down,
        up=up,
        down=down,
        latency_count=up,
        latency_sum_ms=ms * up,
        histogram={str(bucket_of(ms)): up} if up else {},
    )


def make_page(org, slug="acme", **data):
    return services.status_page_create(
        org=org, data={"name": data.pop("name", "Acme"), "slug": slug, **data}
    )


def make_section(page, name, monitors, position=0):
    return services.section_create(
        org=page.organization,
        data={
            "page": page.pk,
            "name": name,
            "position": position,
            "monitors": [{"monitor": m.pk} for m in monitors],
        },
    )


def page_renaming(org, monitor_name: str, shown_as: str, *, slug: str = "names"):
    """A page whose one section shows the monitor `monitor_name` as `shown_as`: (page, monitor)."""
    monitor = make_monitor(org, monitor_name)
    page = make_page(org, slug=slug)
    services.section_create(
        org=org,
        data={
            "page": page.pk,
            "name": "Core",
            "monitors": [{"monitor": monitor.pk, "display_name": shown_as}],
        },
    )
    return page, monitor


def make_incident(monitor=None, *, org=None, title="API is down", resolved=False) -> Incident:
    now = timezone.now()
    org_id = monitor.organization_id if monitor else org.pk
    return Incident.objects.create(
        organization_id=org_id,
        monitor=monitor,
        rule="service_down" if monitor else "custom",
        title=title,
        severity="error",
        status=IncidentStatus.RESOLVED if resolved else IncidentStatus.TRIGGERED,
        opened_at=now - timedelta(hours=2),
        last_seen_at=now,
        resolved_at=now - timedelta(hours=1) if resolved else None,
    )


@pytest.fixture
def api(client_for):
    """client_for with JSON bodies by default."""

    def make(user):
        client = client_for(user)
        client.default_format = "json"
        return client

    return make
