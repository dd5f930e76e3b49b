"""The outbox end to end against real receivers: an HTTP server checking signatures, an SMTP
server, Apprise's json:// to the same HTTP server. Faults: a receiver failing then
recovering, a receiver gone, a worker killed mid-send, a lost task, a permanent refusal."""

from __future__ import annotations

import email
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.alerts.models import Notification, NotificationStatus
from apps.alerts.services import channels as channel_services
from apps.alerts.services import delivery
from apps.incidents.models import EventKind, IncidentEvent
from apps.plans.models import Limit, UsageCounter, UsageMetric
from apps.plans.services import limit_override_set
from healthorch.metrics import notifier_notifications_sent_total
from tests.alerts.conftest import make_email, make_webhook
from tests.alerts.support import open_incident
from tests.monitors.targets import closed_port

pytestmark = pytest.mark.django_db


def sent_count(kind: str, outcome: str) -> float:
    return notifier_notifications_sent_total.labels(channel=kind, outcome=outcome)._value.get()


def notifications_used(org) -> int:
    row = UsageCounter.objects.filter(
        organization=org, metric=UsageMetric.NOTIFICATIONS_SENT
    ).first()
    return row.value if row else 0


def test_an_opened_incident_reaches_the_webhook_signed_with_the_documented_body(
    org, receiver, nudges, capture
):
    channel = make_webhook(org, receiver)
    before = sent_count("webhook", "sent")

    incident = open_incident(capture, org, severity="error", title="API is down")
    nudges.drain()

    [body] = receiver.delivered
    assert receiver.bad_signatures == 0
    assert body["event"] == "opened"
    assert body["severity"] == "error"
    assert body["title"] == "API is down"
    assert body["incident_id"] == str(incident.pk)
    assert set(body) == {
        "event",
        "severity",
        "title",
        "body",
        "incident_id",
        "monitor",
        "url",
        "occurred_at",
        "extra",
    }
    n = Notification.objects.get(incident=incident)
    assert body["extra"]["idempotency_key"] == n.idempotency_key
    assert (n.status, n.attempts, n.channel) == (NotificationStatus.SENT, 1, channel)
    assert n.attempt_rows.get().ok
    notified = IncidentEvent.objects.get(incident=incident, kind=EventKind.NOTIFIED)
    assert notified.data["outcome"] == "sent"
    assert notified.data["channel_id"] == str(channel.pk)
    assert notified.data["notify"] is False
    assert notifications_used(org) == 1
    assert sent_count("webhook", "sent") == before + 1


def test_an_incident_reaches_email_through_a_real_smtp_server(org, mailbox, nudges, capture):
    make_email(org, to=["ops@example.com", "cto@example.com"])

    open_incident(capture, org, severity="error", title="Checkout is down")
    nudges.drain()

    [envelope] = mailbox.envelopes
    assert envelope.rcpt_tos == ["ops@example.com", "cto@example.com"]
    mail = email.message_from_bytes(envelope.content)
    assert mail["Subject"] == "[healthorch] error: Checkout is down"


def test_an_apprise_channel_posts_json_to_the_receiver(pro, receiver, nudges, capture):
    channel_services.channel_create(
        org=pro,
        kind="apprise",
        name="chat",
        config={"url": f"json://127.0.0.1:{receiver.port}/apprise"},
    )

    open_incident(capture, pro, severity="critical", title="DB is down")
    nudges.drain()

    [body] = receiver.delivered
    assert body["title"] == "DB is down"
    assert body["type"] == "failure"
    assert receiver.requests[0].path == "/apprise"


def test_500_three_times_then_200_delivers_once_after_four_attempts(
    org, receiver, nudges, capture, time_machine
):
    time_machine.move_to(timezone.now(), tick=True)
    make_webhook(org, receiver)
    receiver.script = [500, 500, 500]

    incident = open_incident(capture, org)
    nudges.drain()
    for _ in range(5):
        time_machine.shift(timedelta(minutes=20))  # past any backoff with jitter
        nudges.drain()

    assert len(receiver.delivered) == 1
    assert len(receiver.requests) == 4
    n = Notification.objects.get(incident=incident)
    assert (n.status, n.attempts) == (NotificationStatus.SENT, 4)
    attempts = list(n.attempt_rows.order_by("number"))
    assert [a.ok for a in attempts] == [False, False, False, True]
    assert all("500" in a.error for a in attempts[:3])
    assert notifications_used(org) == 1


def test_the_waits_between_attempts_grow_exponentially_with_jitter(
    org, receiver, nudges, capture, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)
    make_webhook(org, receiver)
    receiver.default = 503
    incident = open_incident(capture, org)
    nudges.drain()

    waits = []
    for _ in range(5):
        n = Notification.objects.get(incident=incident)
        assert n.status == NotificationStatus.FAILED
        waits.append((n.next_attempt_at - timezone.now()).total_seconds())
        time_machine.move_to(n.next_attempt_at)
        nudges.drain()

    for i, wait in enumerate(waits):
        assert 60 * 2**i * 0.8 <= wait <= 60 * 2**i * 1.2
    assert 24 * 60 <= sum(waits) <= 38 * 60  # ~31 minutes for the default 6 attempts


def test_a_receiver_that_is_gone_ends_dead_after_the_maximum_attempts(
    org, nudges, capture, time_machine, receiver
):
    time_machine.move_to(timezone.now(), tick=True)
    with closed_port() as port:
        channel, _ = channel_services.channel_create(
            org=org,
            kind="webhook",
            name="gone",
            config={"url": f"http://127.0.0.1:{port}/hook", "secret": "x" * 20},
        )
        before = sent_count("webhook", "dead")
        incident = open_incident(capture, org)
        nudges.drain()
        for _ in range(8):
            time_machine.shift(timedelta(minutes=20))
            nudges.drain()

    n = Notification.objects.get(incident=incident)
    assert (n.status, n.attempts) == (NotificationStatus.DEAD, 6)
    assert n.attempt_rows.count() == 6
    assert "connection failed" in n.last_error
    assert sent_count("webhook", "dead") == before + 1
    event = IncidentEvent.objects.get(incident=incident, kind=EventKind.NOTIFIED)
    assert event.data["outcome"] == "dead"
    channel.refresh_from_db()
    assert channel.enabled  # temporary errors never disable a channel
    assert notifications_used(org) == 0  # nobody received it: the allowance is given back


def test_a_task_that_runs_twice_delivers_once(org, receiver, nudges, capture):
    make_webhook(org, receiver)
    incident = open_incident(capture, org)
    [(_, args, _)] = nudges.queued
    nudges.drain()

    assert delivery.notification_deliver(notification_id=args[0]) is None  # the duplicate run
    assert len(receiver.delivered) == 1
    assert Notification.objects.get(incident=incident).attempts == 1


def test_a_worker_killed_mid_send_is_delivered_once_by_the_sweep(
    org, receiver, nudges, capture, time_machine
):
    time_machine.move_to(timezone.now(), tick=True)
    make_webhook(org, receiver)
    incident = open_incident(capture, org)
    n = Notification.objects.get(incident=incident)
    # The worker claimed the row and died before sending: the row is `sending`, no task left.
    assert delivery._claim(n.pk, timezone.now())
    nudges.queued.clear()

    with capture(execute=True):
        assert delivery.notifications_sweep()["lost"] == 0  # still inside its lease
    time_machine.shift(timedelta(minutes=3))
    with capture(execute=True):
        assert delivery.notifications_sweep()["lost"] == 1
    nudges.drain()
    with capture(execute=True):
        delivery.notifications_sweep()
    nudges.drain()

    assert len(receiver.delivered) == 1
    n.refresh_from_db()
    assert (n.status, n.attempts) == (NotificationStatus.SENT, 2)
    lost, ok = n.attempt_rows.order_by("number")
    assert "stopped mid-send" in lost.error
    assert ok.ok


def test_a_pending_row_whose_task_was_lost_is_delivered_once_by_the_sweep(
    org, receiver, nudges, capture, time_machine
):
    time_machine.move_to(timezone.now(), tick=True)
    make_webhook(org, receiver)
    incident = open_incident(capture, org)
    nudges.queued.clear()  # the broker lost the message

    time_machine.shift(timedelta(seconds=30))
    with capture(execute=True):
        assert delivery.notifications_sweep()["nudged"] == 1
    with capture(execute=True):
        delivery.notifications_sweep()  # nudged twice before any worker ran
    nudges.drain()

    assert len(receiver.delivered) == 1
    assert Notification.objects.get(incident=incident).status == NotificationStatus.SENT


def test_a_permanent_refusal_is_dead_at_once_and_disables_the_channel(
    org, receiver, nudges, capture
):
    channel = make_webhook(org, receiver)
    receiver.default = 410

    first = open_incident(capture, org, title="one")
    nudges.drain()
    second = open_incident(capture, org, title="two", rule="other")
    nudges.drain()

    n = Notification.objects.get(incident=first)
    assert (n.status, n.attempts) == (NotificationStatus.DEAD, 1)
    channel.refresh_from_db()
    assert not channel.enabled
    assert "410" in channel.disabled_reason
    # Audited as the system's doing, once, with what changed.
    from apps.audit.models import AuditEntry

    [entry] = AuditEntry.objects.filter(action="channel.disabled")
    assert (entry.actor_kind, entry.object_id) == ("system", str(channel.pk))
    assert "410" in entry.changes["disabled_reason"]["after"]
    # A disabled channel is not picked for new incidents at all.
    assert not Notification.objects.filter(incident=second).exists()
    assert len(receiver.requests) == 1


def test_retry_after_is_honoured_for_the_next_attempt(org, receiver, nudges, capture, time_machine):
    time_machine.move_to(timezone.now(), tick=False)
    make_webhook(org, receiver)
    receiver.script = [(429, {"Retry-After": "900"})]

    incident = open_incident(capture, org)
    nudges.drain()

    n = Notification.objects.get(incident=incident)
    assert n.status == NotificationStatus.FAILED
    assert (n.next_attempt_at - timezone.now()).total_seconds() == pytest.approx(900, abs=1)
    time_machine.shift(timedelta(seconds=899))
    nudges.drain()
    assert len(receiver.requests) == 1
    time_machine.shift(timedelta(seconds=2))
    nudges.drain()
    assert len(receiver.delivered) == 1


def test_an_operator_retry_of_a_dead_notification_delivers_it(
    org, receiver, nudges, capture, settings
):
    settings.ALERTS_MAX_ATTEMPTS = 1
    make_webhook(org, receiver)
    receiver.script = [500]
    incident = open_incident(capture, org)
    nudges.drain()
    n = Notification.objects.get(incident=incident)
    assert n.status == NotificationStatus.DEAD

    with capture(execute=True):
        assert delivery.notification_retry(notification=n)
        assert not delivery.notification_retry(notification=n)  # already queued
    nudges.drain()

    n.refresh_from_db()
    assert (n.status, n.attempts) == (NotificationStatus.SENT, 2)
    assert len(receiver.delivered) == 1
    assert list(n.attempt_rows.values_list("number", "ok")) == [(1, False), (2, True)]


# --- quota ----------------------------------------------------------------------------------


def test_over_the_monthly_cap_notices_are_suppressed_but_critical_email_still_goes(
    org, receiver, mailbox, nudges, capture, settings
):
    settings.ALERTS_GROUP_WINDOW_SECONDS = 0  # one message per incident here
    limit_override_set(org=org, limit=Limit.NOTIFICATIONS_PER_MONTH, value=1, reason="test the cap")
    make_webhook(org, receiver, severities=["error"])
    make_email(org, severities=["critical"])

    first = open_incident(capture, org, severity="error", title="first")
    nudges.drain()
    second = open_incident(capture, org, severity="error", title="second", rule="r2")
    nudges.drain()
    critical = open_incident(capture, org, severity="critical", title="meltdown", rule="r3")
    nudges.drain()

    assert Notification.objects.get(incident=first).status == NotificationStatus.SENT
    assert Notification.objects.get(incident=second).status == NotificationStatus.SUPPRESSED_QUOTA
    assert [b["title"] for b in receiver.delivered] == ["first"]
    assert Notification.objects.get(incident=critical).status == NotificationStatus.SENT
    assert len(mailbox.envelopes) == 1
    assert notifications_used(org) == 2  # the critical email is counted too
    assert IncidentEvent.objects.get(incident=second, kind=EventKind.NOTIFIED).data["outcome"] == (
        "suppressed_quota"
    )
