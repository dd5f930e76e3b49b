"""The console: the delivery log with its attempts inline, the retry-dead action, tenant
scoping (another organization's rows are 404), secrets never shown."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.alerts.models import Notification, NotificationStatus
from tests.alerts.conftest import make_webhook
from tests.alerts.support import WEBHOOK_SECRET, open_incident
from tests.conftest import console

pytestmark = pytest.mark.django_db


@pytest.fixture
def dead(org, receiver, nudges, capture, settings, time_machine):
    """A notification that used its whole budget (2 attempts here) against a failing hook."""
    time_machine.move_to(timezone.now(), tick=True)
    settings.ALERTS_MAX_ATTEMPTS = 2
    make_webhook(org, receiver)
    receiver.script = [500, 502]
    open_incident(capture, org)
    nudges.drain()
    time_machine.shift(timedelta(minutes=5))
    nudges.drain()
    n = Notification.objects.get()
    assert n.status == NotificationStatus.DEAD
    return n


def test_an_operator_retries_a_dead_notification_from_the_admin(
    operator, dead, receiver, nudges, capture
):
    client = console(operator)
    page = client.get(f"/admin/alerts/notification/{dead.pk}/change/").content.decode()
    assert "webhook answered 500" in page  # the attempts inline
    assert "webhook answered 502" in page

    with capture(execute=True):
        response = client.post(
            "/admin/alerts/notification/",
            {"action": "retry_dead", "_selected_action": [str(dead.pk)], "confirm": "yes"},
        )
    assert response.status_code == 302
    nudges.drain()

    dead.refresh_from_db()
    assert (dead.status, dead.attempts) == (NotificationStatus.SENT, 3)
    assert len(receiver.delivered) == 1


def test_a_tenant_sees_only_their_notifications_and_channels(owner, outsider, dead, org):
    mine = console(owner)
    assert mine.get(f"/admin/alerts/notification/{dead.pk}/change/").status_code == 200
    stranger = console(outsider)
    assert stranger.get(f"/admin/alerts/notification/{dead.pk}/change/").status_code == 404
    assert stranger.get(f"/admin/alerts/channel/{dead.channel_id}/change/").status_code == 404
    assert "ops hook" not in stranger.get("/admin/alerts/channel/").content.decode()
    with_action = stranger.post(
        "/admin/alerts/notification/",
        {"action": "retry_dead", "_selected_action": [str(dead.pk)], "confirm": "yes"},
    )
    assert with_action.status_code in (200, 302)
    dead.refresh_from_db()
    assert dead.status == NotificationStatus.DEAD


def test_the_channel_page_never_shows_the_secret(operator, org, receiver):
    channel = make_webhook(org, receiver)
    page = console(operator).get(f"/admin/alerts/channel/{channel.pk}/change/").content.decode()
    assert "ops hook" in page
    assert WEBHOOK_SECRET not in page
    assert channel.secret not in page
