"""Maintenance windows and silences: one-off and recurring (cron, weekly), per monitor, tag or
the whole organization. In maintenance a monitor shows `maintenance`, opens nothing and
notifies no one; under a silence incidents are recorded but nobody hears of them."""

from datetime import UTC, datetime, time, timedelta

import pytest
import time_machine
from django.utils import timezone

from apps.incidents import services, sweeps
from apps.incidents import windows as window_math
from apps.incidents.models import Incident, MaintenanceWindow, StatusChange
from apps.monitors.models import MonitorStatus
from tests.factories import make_monitor
from tests.incidents.conftest import down, feed, notified, up

pytestmark = pytest.mark.django_db


def _window(org, **data):
    data.setdefault("name", "db upgrade")
    return services.window_create(org=org, data=data)


def _open_window(org, **data):
    """A window that began a minute ago and lasts the hour."""
    now = timezone.now()
    return _window(
        org, starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(hours=1), **data
    )


def test_a_one_off_window_puts_the_monitor_in_maintenance_and_opens_nothing(org, published):
    monitor = make_monitor(org)
    other = make_monitor(org, name="other")
    now = timezone.now()
    _open_window(
        org,
        monitors=[monitor.pk],
    )
    monitor.refresh_from_db()
    other.refresh_from_db()
    assert monitor.status == MonitorStatus.MAINTENANCE  # at once, not at the next sweep
    assert other.status == MonitorStatus.UNKNOWN
    feed(monitor, down(), down(), down())
    assert monitor.status == MonitorStatus.MAINTENANCE
    assert monitor.consecutive_failures == 3  # still checked
    assert not Incident.objects.exists()
    assert published == []
    # The window ends while the service is still down: the incident opens then, notified.
    sweeps.maintenance_sync(now=now + timedelta(hours=1, seconds=1))
    monitor.refresh_from_db()
    assert monitor.status == MonitorStatus.DOWN
    assert notified(published) == [("service_down", "opened")]
    reasons = list(
        StatusChange.objects.filter(monitor=monitor).order_by("at", "id").values_list("old", "new")
    )
    assert reasons == [("unknown", "maintenance"), ("maintenance", "down")]


def test_a_monitor_that_is_fine_after_maintenance_comes_back_up_quietly(org, published):
    monitor = make_monitor(org)
    window = _open_window(
        org,
        all_monitors=True,
    )
    feed(monitor, down(), down(), up())
    services.window_delete(window=window)  # deleting ends it at once
    monitor.refresh_from_db()
    assert monitor.status == MonitorStatus.UP
    assert published == []


def test_a_window_starting_between_sweeps_still_holds_a_failing_monitor(org):
    monitor = make_monitor(org)
    now = timezone.now()
    # Created for the future; it starts before any sweep runs.
    _window(
        org,
        starts_at=now + timedelta(minutes=5),
        ends_at=now + timedelta(hours=1),
        monitors=[monitor.pk],
    )
    feed(monitor, down(), down(), at=now + timedelta(minutes=6))
    assert monitor.status == MonitorStatus.MAINTENANCE
    assert not Incident.objects.exists()


def test_windows_cover_monitors_by_tag(org):
    db = make_monitor(org, name="db", tags=["db", "eu"])
    web = make_monitor(org, name="web", tags=["web"])
    _open_window(org, tags=["db"])
    db.refresh_from_db()
    web.refresh_from_db()
    assert (db.status, web.status) == (MonitorStatus.MAINTENANCE, MonitorStatus.UNKNOWN)


def test_a_window_never_reaches_another_organization(org, other_org):
    theirs = make_monitor(other_org, name="theirs")
    _open_window(
        org,
        all_monitors=True,
    )
    theirs.refresh_from_db()
    assert theirs.status == MonitorStatus.UNKNOWN
    feed(theirs, down(), down())
    assert Incident.objects.get().monitor == theirs


def test_a_weekly_window_follows_its_time_zone(org):
    # Sundays 02:00-03:00 in Berlin; 2026-07-05 is a Sunday (CEST, UTC+2).
    monitor = make_monitor(org)
    window = _window(
        org,
        recurrence="weekly",
        weekdays=[6],
        start_time=time(2, 0),
        duration_minutes=60,
        timezone="Europe/Berlin",
        monitors=[monitor.pk],
    )
    inside = datetime(2026, 7, 5, 0, 30, tzinfo=UTC)  # 02:30 in Berlin
    assert window_math.is_active(window, inside)
    assert not window_math.is_active(window, inside + timedelta(hours=1))  # 03:30
    assert not window_math.is_active(window, inside + timedelta(days=1))  # Monday
    assert window_math.is_active(window, inside + timedelta(days=7))  # next Sunday
    with time_machine.travel(inside, tick=False):
        sweeps.maintenance_sync(now=inside)
        monitor.refresh_from_db()
        assert monitor.status == MonitorStatus.MAINTENANCE
        feed(monitor, down(), down(), at=inside)
    after = inside + timedelta(hours=1)
    sweeps.maintenance_sync(now=after)
    monitor.refresh_from_db()
    assert monitor.status == MonitorStatus.DOWN
    assert Incident.objects.get().opened_at == after


def test_a_cron_window_recurs(org):
    monitor = make_monitor(org)
    window = _window(
        org, recurrence="cron", cron="0 3 * * *", duration_minutes=30, all_monitors=True
    )
    day = datetime(2026, 3, 10, tzinfo=UTC)
    assert window_math.is_active(window, day.replace(hour=3))
    assert window_math.is_active(window, day.replace(hour=3, minute=29))
    assert not window_math.is_active(window, day.replace(hour=3, minute=30))
    assert window_math.next_start(window, day.replace(hour=4)) == day.replace(hour=3) + timedelta(
        days=1
    )
    sweeps.maintenance_sync(now=day.replace(hour=3, minute=5))
    monitor.refresh_from_db()
    assert monitor.status == MonitorStatus.MAINTENANCE


def test_a_recurring_window_respects_its_bounds(org):
    window = _window(
        org,
        recurrence="cron",
        cron="0 3 * * *",
        duration_minutes=30,
        all_monitors=True,
        starts_at=datetime(2026, 3, 1, tzinfo=UTC),
        ends_at=datetime(2026, 3, 31, tzinfo=UTC),
    )
    assert not window_math.is_active(window, datetime(2026, 2, 20, 3, 5, tzinfo=UTC))
    assert window_math.is_active(window, datetime(2026, 3, 20, 3, 5, tzinfo=UTC))
    assert not window_math.is_active(window, datetime(2026, 4, 2, 3, 5, tzinfo=UTC))


def test_a_silence_records_incidents_without_notifying(org, published):
    monitor = make_monitor(org)
    _open_window(
        org,
        kind="silence",
        monitors=[monitor.pk],
    )
    monitor.refresh_from_db()
    assert monitor.status == MonitorStatus.UNKNOWN  # a silence does not hide the status
    feed(monitor, down(), down())
    assert monitor.status == MonitorStatus.DOWN
    incident = Incident.objects.get()
    assert incident.suppressed
    assert incident.suppressed_reason == "silenced by db upgrade"
    feed(monitor, up())
    assert notified(published) == []  # neither the opening nor its recovery
    assert [p.kind for p in published] == ["opened", "resolved"]


def test_the_sweep_is_idempotent(org):
    make_monitor(org)
    now = timezone.now()
    _open_window(
        org,
        all_monitors=True,
    )
    assert sweeps.maintenance_sync(now=now) == {"entered": 0, "left": 0}
    assert MaintenanceWindow.objects.count() == 1
