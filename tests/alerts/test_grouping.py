"""Grouping: many incidents of one organization opening together reach each channel as one
grouped message (after the first, which goes out at once), not one message each."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from apps.alerts.models import Notification, NotificationStatus
from apps.alerts.services import delivery
from apps.incidents import events
from apps.incidents.models import Incident
from tests.alerts.conftest import make_webhook
from tests.alerts.support import open_incident, opened_event, resolve
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db


def open_many(
    capture, org, n: int, *, batch: int = 200, severity: str = "critical", start: int = 0
) -> None:
    """n incidents (numbered from `start`) opened in transactions of `batch`, as the check fold
    writes them."""
    for first in range(start, start + n, batch):
        with capture(execute=True), transaction.atomic():
            now = timezone.now()
            for i in range(first, min(start + n, first + batch)):
                incident = Incident.objects.create(
                    organization=org,
                    rule="service_down",
                    title=f"svc-{i:04d} is down",
                    severity=severity,
                    opened_at=now,
                    last_seen_at=now,
                )
                events.publish(incident=incident, event=opened_event(incident))


def test_incidents_opening_together_make_one_grouped_message_after_the_first(
    org, receiver, nudges, capture, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)
    make_webhook(org, receiver)

    for i in range(4):
        open_incident(capture, org, severity="error", title=f"svc-{i} is down", rule=f"r{i}")
        time_machine.shift(timedelta(seconds=1))
    nudges.drain()
    assert [b["title"] for b in receiver.delivered] == ["svc-0 is down"]  # at once, alone

    time_machine.shift(timedelta(seconds=4))  # the batch began at 1 s and holds 5 s
    nudges.drain()

    _first, grouped = receiver.delivered
    assert grouped["extra"]["grouped"] is True
    assert grouped["extra"]["count"] == 4
    assert [i["title"] for i in grouped["extra"]["incidents"]] == [
        "svc-1 is down",
        "svc-2 is down",
        "svc-3 is down",
    ]
    assert [e["title"] for e in grouped["extra"]["earlier"]] == ["svc-0 is down"]
    assert grouped["title"] == "4 incidents opened in Acme"
    assert receiver.bad_signatures == 0
    members = Notification.objects.filter(group__isnull=False)
    assert members.count() == 3
    assert set(members.values_list("status", flat=True)) == {NotificationStatus.GROUPED}
    group = Notification.objects.get(is_group=True)
    assert group.status == NotificationStatus.SENT
    # Every member incident's timeline says it was notified, through the group.
    for member in members:
        assert member.incident.events.filter(kind="notified", data__grouped=True).exists()


def test_a_lone_incident_after_the_window_goes_out_at_once(
    org, receiver, nudges, capture, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)
    make_webhook(org, receiver)
    open_incident(capture, org, title="one", rule="a")
    nudges.drain()
    time_machine.shift(timedelta(seconds=61))

    open_incident(capture, org, title="two", rule="b")
    nudges.drain()

    assert [b["title"] for b in receiver.delivered] == ["one", "two"]


def test_a_batch_of_one_is_sent_as_itself(org, receiver, nudges, capture, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    make_webhook(org, receiver)
    open_incident(capture, org, title="one", rule="a")
    time_machine.shift(timedelta(seconds=10))
    open_incident(capture, org, title="two", rule="b")  # held: the window is still open
    nudges.drain()
    assert len(receiver.delivered) == 1

    time_machine.shift(timedelta(seconds=5))
    nudges.drain()

    assert [b["title"] for b in receiver.delivered] == ["one", "two"]
    assert "grouped" not in receiver.delivered[1]["extra"]


def test_other_organizations_are_never_grouped_together(
    org, receiver, nudges, capture, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)
    other = OrganizationFactory(name="Initech", slug="initech")
    make_webhook(org, receiver, path="/acme")
    make_webhook(other, receiver, path="/initech")

    open_incident(capture, org, title="acme down")
    open_incident(capture, other, title="initech down")
    nudges.drain()

    assert sorted(r.path for r in receiver.requests) == ["/acme", "/initech"]


def test_an_incident_resolved_while_held_is_neither_grouped_nor_resolved_to_that_channel(
    org, receiver, nudges, capture, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)
    make_webhook(org, receiver)
    open_incident(capture, org, title="one", rule="a")
    blip = open_incident(capture, org, title="blip", rule="b")
    resolve(capture, blip)
    time_machine.shift(timedelta(seconds=6))
    nudges.drain()

    assert [b["title"] for b in receiver.delivered] == ["one"]
    assert Notification.objects.get(incident=blip).status == NotificationStatus.SUPPRESSED


def test_a_lost_flush_is_done_by_the_sweep(org, receiver, nudges, capture, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    make_webhook(org, receiver)
    open_incident(capture, org, title="one", rule="a")
    open_incident(capture, org, title="two", rule="b")
    open_incident(capture, org, title="three", rule="c")
    nudges.drain()
    nudges.queued.clear()  # the flush task was lost

    time_machine.shift(timedelta(seconds=20))
    with capture(execute=True):
        assert delivery.notifications_sweep()["flushed"] == 1
    nudges.drain()

    assert [b["title"] for b in receiver.delivered] == ["one", "3 incidents opened in Acme"]


def test_a_thousand_monitors_down_at_once_make_a_few_grouped_messages(
    org, receiver, nudges, capture, clock, settings
):
    """On a controlled clock: the fold writes 1,000 incidents in five transactions of 200, one
    second apart (the broker's due times follow the same clock). Each channel gets the first
    at once, then one grouped message per hold the writing spans, and nothing is left pending
    one hold after the last write. How long the real thing takes on a quiet machine is
    measured by benchmarks/alerting.py."""
    settings.ALERTS_GROUP_HOLD_SECONDS = 3
    make_webhook(org, receiver)
    make_webhook(org, receiver, name="second", path="/second")

    for _ in range(5):  # seconds 0..4
        open_many(capture, org, 200, start=_ * 200)
        nudges.drain()  # the first notice per channel goes at once; due flushes go
        clock.shift(timedelta(seconds=1))
    clock.shift(timedelta(seconds=settings.ALERTS_GROUP_HOLD_SECONDS))
    nudges.drain()

    assert not Notification.objects.filter(status=NotificationStatus.PENDING).exists()
    for path in ("/hook", "/second"):
        bodies = [
            b for r, b in zip(receiver.requests, receiver.delivered, strict=True) if r.path == path
        ]
        singles = [b for b in bodies if not b["extra"].get("grouped")]
        groups = [b for b in bodies if b["extra"].get("grouped")]
        assert [b["title"] for b in singles] == ["svc-0000 is down"]
        # Held from second 0 to 3, then from second 3 to 6: two grouped messages.
        assert [len(g["extra"]["incidents"]) for g in groups] == [599, 400]
        # Each counts the first too, named as notified alone just before.
        assert [g["extra"]["count"] for g in groups] == [600, 401]
        titles = [i["title"] for g in groups for i in g["extra"]["incidents"]]
        assert len(titles) == len(set(titles))
        assert sum(len(g["extra"]["incidents"]) for g in groups) + len(singles) == 1000
