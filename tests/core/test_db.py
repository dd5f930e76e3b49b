"""apps.core.db.bulk_update_values: many rows, each with its own values, in one statement (on
PostgreSQL and on SQLite), leaving other rows and other columns alone."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.core.db import bulk_update_values
from apps.monitors.models import Monitor, MonitorStatus

pytestmark = pytest.mark.django_db


def _monitor(org, name: str) -> Monitor:
    return Monitor.objects.create(
        organization=org, name=name, slug=name, kind="tcp", config={"host": "127.0.0.1", "port": 9}
    )


def test_each_row_gets_its_own_values_in_one_statement(org):
    monitors = [_monitor(org, f"m{i}") for i in range(30)]
    untouched = _monitor(org, "other")
    now = timezone.now().replace(microsecond=123456)
    statuses = [MonitorStatus.DOWN, MonitorStatus.UP, MonitorStatus.DEGRADED]
    for i, m in enumerate(monitors):
        m.status = statuses[i % 3]
        m.consecutive_failures = i
        m.last_checked_at = now - timedelta(seconds=i)
        m.last_up_at = None if i % 2 else now
        m.name = "must not be written"

    with CaptureQueriesContext(connection) as captured:
        changed = bulk_update_values(
            Monitor, monitors, ["status", "consecutive_failures", "last_checked_at", "last_up_at"]
        )

    assert changed == 30
    assert len([q for q in captured.captured_queries if "UPDATE" in q["sql"]]) == 1
    assert not Monitor.objects.filter(name="must not be written").exists()
    fresh = {m.pk: m for m in Monitor.objects.filter(pk__in=[m.pk for m in monitors])}
    for i, m in enumerate(monitors):
        row = fresh[m.pk]
        assert row.status == statuses[i % 3]
        assert row.consecutive_failures == i
        assert row.last_checked_at == now - timedelta(seconds=i)
        assert row.last_up_at == (None if i % 2 else now)
    untouched.refresh_from_db()
    assert untouched.consecutive_failures == 0
    assert untouched.name == "other"
