"""Escalation waits while an incident is on hold, with controlled time (time-machine):
snoozed, its monitor in maintenance, or its monitor paused; and what happens when the hold
ends. Incidents come from the real state machine (checks recorded through the engine)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.alerts.services import escalation
from apps.incidents import services as incident_services
from apps.incidents import sweeps
from apps.incidents.models import EventKind, Incident, IncidentStatus
from apps.monitors import services as monitor_services
from apps.monitors.models import MonitorStatus
from tests.alerts.conftest import make_webhook
from tests.alerts.support import paths, sweep
from tests.factories import make_monitor
from tests.incidents.conftest import down, feed, up

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_grouping")]


@pytest.fixture
def hooks(org, receiver):
    return [make_webhook(org, receiver, name=n, path=f"/{n}") for n in ("first", "second")]


@pytest.fixture
def down_incident(org, hooks, receiver, nudges, capture, clock):
    """An error incident of a monitor that went down: the first channel told at once, every
    channel due 5 minutes later (the default walk for errors)."""
    monitor = make_monitor(org)
    with capture(execute=True):
        feed(monitor, down(), down())
    nudges.drain()
    assert paths(receiver) == ["/first"]
    incident = Incident.objects.get(monitor=monitor)
    assert incident.next_escalation_at == timezone.now() + timedelta(minutes=5)
    return incident


def escalations(incident) -> int:
    return incident.events.filter(kind=EventKind.ESCALATED).count()


def test_a_snoozed_incident_does_not_escalate_and_resumes_after_the_snooze(
    down_incident, receiver, nudges, capture, clock, member
):
    with capture(execute=True):
        incident_services.incident_snooze(incident=down_incident, user=member, minutes=30)

    for minutes in (5, 10, 20, 29):  # the step fell due at 5 minutes, inside the snooze
        clock.move_to(down_incident.opened_at + timedelta(minutes=minutes))
        assert sweep(capture, nudges) == 0
    assert paths(receiver) == ["/first"]
    assert escalations(down_incident) == 0
    down_incident.refresh_from_db()
    assert down_incident.status == IncidentStatus.TRIGGERED  # still open, just quiet

    clock.move_to(down_incident.opened_at + timedelta(minutes=30))  # the snooze is over
    assert sweep(capture, nudges) == 1
    assert sorted(paths(receiver)[1:]) == ["/first", "/second"]
    assert escalations(down_incident) == 1


def test_acknowledging_during_the_snooze_means_nothing_is_sent_after_it(
    down_incident, receiver, nudges, capture, clock, member
):
    with capture(execute=True):
        incident_services.incident_snooze(incident=down_incident, user=member, minutes=30)
    clock.shift(timedelta(minutes=10))
    assert sweep(capture, nudges) == 0
    with capture(execute=True):
        incident_services.incident_acknowledge(incident=down_incident, user=member)

    clock.shift(timedelta(hours=1))
    assert sweep(capture, nudges) == 0
    assert paths(receiver) == ["/first"]


def maintenance(org, monitor, minutes: int):
    now = timezone.now()
    return incident_services.window_create(
        org=org,
        data={
            "name": "upgrade",
            "kind": "maintenance",
            "recurrence": "once",
            "starts_at": now,
            "ends_at": now + timedelta(minutes=minutes),
            "monitors": [monitor],
        },
    )


def test_maintenance_holds_an_open_incident_and_it_escalates_when_the_monitor_is_still_down_after(
    org, down_incident, receiver, nudges, capture, clock
):
    monitor = down_incident.monitor
    with capture(execute=True):
        maintenance(org, monitor, minutes=30)
    monitor.refresh_from_db()
    assert monitor.status == MonitorStatus.MAINTENANCE

    clock.shift(timedelta(minutes=10))
    with capture(execute=True):
        feed(monitor, down())  # checks keep running and counting during the window
    assert sweep(capture, nudges) == 0
    clock.shift(timedelta(minutes=19))
    assert sweep(capture, nudges) == 0
    assert paths(receiver) == ["/first"]

    clock.shift(timedelta(minutes=1))  # the window ends: the sweep takes the monitor out
    with capture(execute=True):
        assert sweeps.maintenance_sync()["left"] == 1
    monitor.refresh_from_db()
    assert monitor.status == MonitorStatus.DOWN
    assert sweep(capture, nudges) == 1  # the step that fell due in the window runs now
    assert sorted(paths(receiver)[1:]) == ["/first", "/second"]
    down_incident.refresh_from_db()
    assert down_incident.status == IncidentStatus.TRIGGERED
    assert Incident.objects.filter(monitor=monitor).count() == 1  # the same incident goes on


def test_an_incident_whose_monitor_recovered_during_maintenance_is_resolved_when_it_ends(
    org, down_incident, receiver, nudges, capture, clock
):
    monitor = down_incident.monitor
    with capture(execute=True):
        maintenance(org, monitor, minutes=30)
    clock.shift(timedelta(minutes=10))
    with capture(execute=True):
        feed(monitor, up())
    assert sweep(capture, nudges) == 0

    clock.shift(timedelta(minutes=20))
    with capture(execute=True):
        sweeps.maintenance_sync()
    nudges.drain()

    down_incident.refresh_from_db()
    assert down_incident.status == IncidentStatus.RESOLVED
    assert down_incident.next_escalation_at is None
    assert sweep(capture, nudges) == 0
    # The channel that heard of the outage hears of its end; nobody was escalated to.
    assert paths(receiver) == ["/first", "/first"]
    assert receiver.delivered[-1]["event"] == "resolved"


def test_pausing_a_monitor_holds_escalation_and_resuming_waits_for_its_next_check(
    down_incident, receiver, nudges, capture, clock
):
    monitor = down_incident.monitor
    monitor_services.monitor_pause(monitor=monitor)
    clock.shift(timedelta(minutes=10))
    assert sweep(capture, nudges) == 0
    clock.shift(timedelta(hours=2))
    assert sweep(capture, nudges) == 0
    assert paths(receiver) == ["/first"]

    monitor_services.monitor_resume(monitor=monitor)
    assert sweep(capture, nudges) == 0  # no verdict yet since it came back
    with capture(execute=True):
        feed(monitor, down(), down())  # down again
    down_incident.refresh_from_db()
    assert down_incident.status == IncidentStatus.TRIGGERED
    assert down_incident.next_escalation_at <= timezone.now() + escalation.HOLD_RECHECK
    clock.shift(escalation.HOLD_RECHECK)
    assert sweep(capture, nudges) == 1
    assert sorted(paths(receiver)[1:]) == ["/first", "/second"]


def test_a_resumed_monitor_that_checks_up_resolves_its_incident_without_escalating(
    down_incident, receiver, nudges, capture, clock
):
    monitor = down_incident.monitor
    monitor_services.monitor_pause(monitor=monitor)
    clock.shift(timedelta(minutes=10))
    assert sweep(capture, nudges) == 0
    monitor_services.monitor_resume(monitor=monitor)
    with capture(execute=True):
        feed(monitor, up())
    nudges.drain()

    down_incident.refresh_from_db()
    assert down_incident.status == IncidentStatus.RESOLVED
    clock.shift(timedelta(hours=1))
    assert sweep(capture, nudges) == 0
    assert [b["event"] for b in receiver.delivered] == ["opened", "resolved"]


def test_healing_cannot_expedite_a_held_incident(down_incident, receiver, nudges, capture, member):
    with capture(execute=True):
        incident_services.incident_snooze(incident=down_incident, user=member, minutes=30)
        assert not escalation.escalation_expedite(incident_id=down_incident.pk, reason="test")
    nudges.drain()
    assert paths(receiver) == ["/first"]
