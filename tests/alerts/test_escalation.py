"""Escalation with controlled time (time-machine): default walks per severity, a custom policy
with repeats, acknowledgement stopping it, the resolved notice, the seam's notify flag."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from apps.alerts.models import Channel, Notification, NotificationKind, NotificationStatus
from apps.alerts.services import escalation
from apps.alerts.services import policies as policy_services
from apps.incidents import events
from apps.incidents.models import EventKind, Incident, IncidentEvent
from apps.plans.services import organization_change_plan
from tests.alerts.conftest import make_webhook
from tests.alerts.support import acknowledge, open_incident, opened_event, paths, resolve, sweep

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("no_grouping")]


@pytest.fixture
def hooks(org, receiver):
    """Three webhook channels, oldest first: `first` is the default first channel."""
    return [make_webhook(org, receiver, name=n, path=f"/{n}") for n in ("first", "second", "third")]


def test_error_notifies_the_first_channel_at_once_then_every_channel_after_5_minutes(
    org, hooks, receiver, nudges, capture, clock
):
    incident = open_incident(capture, org, severity="error")
    nudges.drain()
    assert paths(receiver) == ["/first"]

    clock.shift(timedelta(minutes=4, seconds=59))
    assert sweep(capture, nudges) == 0
    clock.shift(timedelta(seconds=1))
    assert sweep(capture, nudges) == 1

    assert sorted(paths(receiver)[1:]) == ["/first", "/second", "/third"]
    assert {b["event"] for b in receiver.delivered[1:]} == {"escalated"}
    escalated = IncidentEvent.objects.get(incident=incident, kind=EventKind.ESCALATED)
    assert escalated.data["step"] == 2
    assert escalated.data["notify"] is False
    incident.refresh_from_db()
    assert incident.next_escalation_at is None  # no repeat by default
    clock.shift(timedelta(hours=1))
    assert sweep(capture, nudges) == 0


def test_warning_waits_a_minute_then_escalates_15_minutes_later(
    org, hooks, receiver, nudges, capture, clock
):
    open_incident(capture, org, severity="warning")
    nudges.drain()
    assert receiver.requests == []

    clock.shift(timedelta(seconds=59))
    assert sweep(capture, nudges) == 0
    clock.shift(timedelta(seconds=1))
    assert sweep(capture, nudges) == 1
    assert paths(receiver) == ["/first"]
    assert receiver.delivered[0]["event"] == "opened"

    clock.shift(timedelta(minutes=14, seconds=59))
    assert sweep(capture, nudges) == 0
    clock.shift(timedelta(seconds=1))
    assert sweep(capture, nudges) == 1
    assert sorted(paths(receiver)[1:]) == ["/first", "/second", "/third"]


def test_critical_notifies_every_channel_at_once_and_again_a_minute_later(
    org, hooks, receiver, nudges, capture, clock
):
    open_incident(capture, org, severity="critical")
    nudges.drain()
    assert sorted(paths(receiver)) == ["/first", "/second", "/third"]

    clock.shift(timedelta(minutes=1))
    assert sweep(capture, nudges) == 1
    assert len(receiver.delivered) == 6


def test_info_notifies_the_first_channel_and_never_escalates(
    org, hooks, receiver, nudges, capture, clock
):
    incident = open_incident(capture, org, severity="info")
    nudges.drain()

    assert paths(receiver) == ["/first"]
    assert incident.next_escalation_at is None
    clock.shift(timedelta(hours=2))
    assert sweep(capture, nudges) == 0


def test_the_first_channel_is_the_oldest_that_takes_the_severity(org, receiver, nudges, capture):
    make_webhook(org, receiver, name="pager", path="/pager", severities=["critical"])
    make_webhook(org, receiver, name="chat", path="/chat")

    open_incident(capture, org, severity="error")
    nudges.drain()

    assert paths(receiver) == ["/chat"]


def test_acknowledging_stops_escalation(org, hooks, receiver, nudges, capture, clock, member):
    incident = open_incident(capture, org, severity="error")
    nudges.drain()
    clock.shift(timedelta(minutes=2))
    acknowledge(capture, incident, user=member)

    clock.shift(timedelta(minutes=10))
    assert sweep(capture, nudges) == 0

    assert paths(receiver) == ["/first"]
    assert not IncidentEvent.objects.filter(incident=incident, kind=EventKind.ESCALATED).exists()


def test_a_step_claimed_twice_runs_once(org, hooks, receiver, nudges, capture, clock):
    incident = open_incident(capture, org, severity="error")
    clock.shift(timedelta(minutes=5))
    args = {
        "incident_id": incident.pk,
        "due_at": incident.next_escalation_at,
        "step": incident.escalation_step,
        "repeats": incident.escalation_repeats,
        "now": timezone.now(),
    }

    with capture(execute=True):
        assert escalation.escalation_run_step(**args)
        assert not escalation.escalation_run_step(**args)  # a second sweep with the same read

    assert IncidentEvent.objects.filter(incident=incident, kind=EventKind.ESCALATED).count() == 1


def test_a_custom_policy_runs_each_step_at_its_delay_and_repeats(
    pro, hooks, receiver, nudges, capture, clock
):
    first, second, third = hooks
    policy_services.policy_create(
        org=pro,
        data={
            "name": "night shift",
            "severities": ["error", "critical"],
            "repeat": 1,
            "steps": [
                {"delay_minutes": 0, "channels": [first.pk]},
                {"delay_minutes": 2, "channels": [second.pk]},
                {"delay_minutes": 3, "channels": [third.pk, first.pk]},
            ],
        },
    )
    incident = open_incident(capture, pro, severity="error")
    nudges.drain()

    timeline = {0: ["/first"]}
    for minute in range(1, 20):
        clock.shift(timedelta(minutes=1))
        before = len(receiver.requests)
        sweep(capture, nudges)
        if len(receiver.requests) > before:
            timeline[minute] = sorted(paths(receiver)[before:])

    # 0: step 1; 2: step 2; 5: step 3; repeat after max(step 1 delay, 1 min): 6, 8, 11.
    assert timeline == {
        0: ["/first"],
        2: ["/second"],
        5: ["/first", "/third"],
        6: ["/first"],
        8: ["/second"],
        11: ["/first", "/third"],
    }
    steps = IncidentEvent.objects.filter(incident=incident, kind=EventKind.ESCALATED)
    assert [(e.data["step"], e.data["repeat"]) for e in steps.order_by("at", "id")] == [
        (2, 0),
        (3, 0),
        (1, 1),
        (2, 1),
        (3, 1),
    ]


def test_a_policy_is_ignored_once_the_plan_loses_the_feature(pro, hooks, receiver, nudges, capture):
    _first, second, _third = hooks
    policy_services.policy_create(
        org=pro,
        data={
            "name": "second only",
            "severities": ["error"],
            "steps": [{"delay_minutes": 0, "channels": [second.pk]}],
        },
    )
    organization_change_plan(org=pro, plan_code="free", source="test")

    open_incident(capture, pro, severity="error")
    nudges.drain()

    assert paths(receiver) == ["/first"]  # the error default


def test_resolving_tells_every_notified_channel_that_wants_resolutions(
    org, receiver, nudges, capture, clock
):
    make_webhook(org, receiver, name="a", path="/a")
    make_webhook(org, receiver, name="b", path="/b", notify_on_resolved=False)
    make_webhook(org, receiver, name="c", path="/c", severities=["info"])
    incident = open_incident(capture, org, severity="critical")
    nudges.drain()
    assert sorted(paths(receiver)) == ["/a", "/b"]

    resolve(capture, incident)
    nudges.drain()

    resolved = [r for r in receiver.delivered if r["event"] == "resolved"]
    assert len(resolved) == 1
    assert receiver.requests[-1].path == "/a"
    assert resolved[0]["title"].startswith("Resolved: ")
    incident.refresh_from_db()
    assert incident.next_escalation_at is None
    clock.shift(timedelta(minutes=5))
    assert sweep(capture, nudges) == 0


def test_a_resolved_incident_nobody_was_told_about_sends_nothing(
    org, hooks, receiver, nudges, capture, clock
):
    incident = open_incident(capture, org, severity="warning")  # notifies after 1 min
    clock.shift(timedelta(seconds=30))
    resolve(capture, incident)
    nudges.drain()
    clock.shift(timedelta(minutes=2))
    sweep(capture, nudges)

    assert receiver.requests == []
    assert not Notification.objects.filter(incident=incident).exists()


def test_events_without_notify_and_suppressed_incidents_reach_no_one(
    org, hooks, receiver, nudges, capture
):
    now = timezone.now()
    quiet = Incident.objects.create(
        organization=org,
        rule="r",
        title="quiet",
        severity="critical",
        opened_at=now,
        last_seen_at=now,
    )
    muted = Incident.objects.create(
        organization=org,
        rule="r2",
        title="child of a down parent",
        severity="critical",
        opened_at=now,
        last_seen_at=now,
        suppressed=True,
        suppressed_reason="parent down",
    )
    with capture(execute=True), transaction.atomic():
        events.publish(incident=quiet, event=opened_event(quiet, notify=False))
        events.publish(incident=muted, event=opened_event(muted))
    nudges.drain()

    assert not Notification.objects.exists()
    assert receiver.requests == []


def test_a_flapping_notice_goes_to_the_first_step_at_once(org, hooks, receiver, nudges, capture):
    now = timezone.now()
    incident = Incident.objects.create(
        organization=org, rule="r", title="API", severity="error", opened_at=now, last_seen_at=now
    )
    with capture(execute=True), transaction.atomic():
        event = IncidentEvent.objects.create(
            incident=incident,
            organization=org,
            kind=EventKind.FLAPPING,
            at=now,
            note="5 status changes in 30 minutes",
            data={"notify": True},
        )
        events.publish(incident=incident, event=event)
    nudges.drain()

    [body] = receiver.delivered
    assert body["event"] == "flapping"
    assert "5 status changes" in body["body"]
    n = Notification.objects.get()
    assert (n.kind, n.status) == (NotificationKind.FLAPPING, NotificationStatus.SENT)


def test_the_same_event_published_twice_writes_one_notification_per_channel(
    org, hooks, nudges, capture
):
    incident = open_incident(capture, org, severity="critical")
    event = IncidentEvent.objects.get(incident=incident, kind=EventKind.OPENED)
    with capture(execute=True), transaction.atomic():
        events.publish(incident=incident, event=event)

    assert Notification.objects.filter(incident=incident).count() == 3


def test_an_organization_without_channels_gets_no_walk_and_no_timeline_noise(
    org, nudges, capture, clock
):
    incident = open_incident(capture, org, severity="critical")

    assert incident.next_escalation_at is None
    clock.shift(timedelta(minutes=5))
    assert sweep(capture, nudges) == 0
    assert list(incident.events.values_list("kind", flat=True)) == ["opened"]


@transaction.atomic
def _open_in_a_decorated_block(org, title: str) -> Incident:
    now = timezone.now()
    incident = Incident.objects.create(
        organization=org,
        rule=title,
        title=title,
        severity="critical",
        opened_at=now,
        last_seen_at=now,
    )
    events.publish(incident=incident, event=opened_event(incident))
    return incident


def test_what_one_transaction_memoised_is_not_reused_by_the_next(org, receiver, nudges, capture):
    """A decorated function's atomic block is one object re-entered on every call; the
    routes and holds it memoised must not leak into the next call."""
    make_webhook(org, receiver, name="a", path="/a")
    late = make_webhook(org, receiver, name="b", path="/b", enabled=False)
    with capture(execute=True):
        _open_in_a_decorated_block(org, "one")
    Channel.objects.filter(pk=late.pk).update(enabled=True)  # not through a service

    with capture(execute=True):
        second = _open_in_a_decorated_block(org, "two")

    assert set(
        Notification.objects.filter(incident=second).values_list("channel_id", flat=True)
    ) == {
        late.pk,
        *Channel.objects.filter(name="a").values_list("pk", flat=True),
    }
