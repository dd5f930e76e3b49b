"""Email subscriptions against a real SMTP server (aiosmtpd on 127.0.0.1): double opt-in,
update emails with an unsubscribe link, rate limiting, forged links."""

from __future__ import annotations

import email
import re

import pytest
from django.test import Client

from apps.statuspages import services, tokens
from apps.statuspages.models import IncidentUpdate, Subscriber
from tests.factories import make_monitor
from tests.statuspages.conftest import make_incident, make_page, make_section, page_renaming

pytestmark = pytest.mark.django_db


@pytest.fixture
def page(pro):
    page = make_page(pro)
    make_section(page, "Core", [make_monitor(pro, "api")])
    return page


def _mail(envelope):
    message = email.message_from_bytes(envelope.content)
    return message, message.get_payload(decode=True).decode()


def _link(body: str, kind: str) -> str:
    return re.search(rf"http://healthorch\.test(/status/acme/{kind}/\S+)", body).group(1)


def _subscribe(address: str, capture) -> int:
    with capture(execute=True):
        return Client().post("/status/acme/subscribe", {"email": address}).status_code


def test_a_visitor_confirms_gets_updates_and_unsubscribes(
    page, member, mailbox, eager_tasks, django_capture_on_commit_callbacks
):
    assert _subscribe("Visitor@Example.test", django_capture_on_commit_callbacks) == 200
    assert len(mailbox.envelopes) == 1
    message, body = _mail(mailbox.envelopes[0])
    assert message["To"] == "visitor@example.test"
    assert "Confirm" in message["Subject"]
    confirm = _link(body, "confirm")
    subscriber = Subscriber.objects.get()
    assert subscriber.confirmed_at is None

    # Opening the link shows a button (mail scanners do not subscribe); pressing it confirms.
    client = Client()
    assert client.get(confirm).status_code == 200
    Subscriber.objects.get(confirmed_at__isnull=True)
    assert client.post(confirm).status_code == 200
    subscriber.refresh_from_db()
    assert subscriber.active

    incident = make_incident(page.sections.get().items.get().monitor, title="API errors")
    with django_capture_on_commit_callbacks(execute=True):
        update = services.incident_update_post(
            incident=incident, status="identified", message="A bad deploy.", user=member
        )
    assert len(mailbox.envelopes) == 2
    message, body = _mail(mailbox.envelopes[1])
    assert "Identified" in message["Subject"]
    assert "API errors" in message["Subject"]
    assert "A bad deploy." in body
    unsubscribe = _link(body, "unsubscribe")
    assert "".join(message["List-Unsubscribe"].split()) == f"<http://healthorch.test{unsubscribe}>"
    update.refresh_from_db()
    assert update.recipients == 1
    assert update.notified_at is not None

    assert client.post(unsubscribe).status_code == 200
    subscriber.refresh_from_db()
    assert not subscriber.active
    with django_capture_on_commit_callbacks(execute=True):
        services.incident_update_post(
            incident=incident, status="resolved", message="Fixed.", user=member
        )
    assert len(mailbox.envelopes) == 2


def test_pending_and_unsubscribed_addresses_get_no_updates(
    page, member, mailbox, eager_tasks, django_capture_on_commit_callbacks
):
    _subscribe("pending@example.test", django_capture_on_commit_callbacks)
    incident = make_incident(page.sections.get().items.get().monitor)
    with django_capture_on_commit_callbacks(execute=True):
        services.incident_update_post(incident=incident, status="identified", message="m")
    assert [e.rcpt_tos for e in mailbox.envelopes] == [["pending@example.test"]]


def test_an_update_is_sent_once_even_if_its_task_runs_twice(page, mailbox, eager_tasks):
    subscriber = Subscriber.objects.create(
        organization=page.organization, page=page, email="a@example.test"
    )
    services.subscriber_confirm(token=tokens.subscriber_token(subscriber.pk, "confirm"))
    incident = make_incident(page.sections.get().items.get().monitor)
    update = services.incident_update_post(incident=incident, status="identified", message="m")
    assert services.update_fan_out(update_id=str(update.pk)) == 1
    assert services.update_fan_out(update_id=str(update.pk)) == 0
    assert len(mailbox.envelopes) == 1
    assert IncidentUpdate.objects.get().recipients == 1


def test_subscribing_says_the_same_for_known_and_new_addresses(
    page, mailbox, eager_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = Client().post("/status/acme/subscribe", {"email": "a@example.test"})
        again = Client().post("/status/acme/subscribe", {"email": "a@example.test"})
    assert first.content == again.content
    assert Subscriber.objects.count() == 1


def test_a_bad_address_is_a_400_and_stores_nothing(page):
    r = Client().post("/status/acme/subscribe", {"email": "not an email"})
    assert r.status_code == 400
    assert not Subscriber.objects.exists()


def test_subscribing_is_rate_limited_per_client(page, settings):
    settings.STATUS_SUBSCRIBE_PER_MINUTE = 3
    codes = [
        Client().post("/status/acme/subscribe", {"email": f"u{i}@example.test"}).status_code
        for i in range(5)
    ]
    assert codes == [200, 200, 200, 429, 429]
    assert Subscriber.objects.count() == 3


def test_forged_or_crossed_links_do_nothing(page):
    subscriber = Subscriber.objects.create(
        organization=page.organization, page=page, email="a@example.test"
    )
    unsubscribe_token = tokens.subscriber_token(subscriber.pk, "unsubscribe")
    for token in ("abc", unsubscribe_token, unsubscribe_token[:-2] + "xx"):
        assert Client().post(f"/status/acme/confirm/{token}").status_code == 400
    subscriber.refresh_from_db()
    assert subscriber.confirmed_at is None


def test_an_unreachable_mail_server_is_logged_and_not_retried_into_duplicates(
    page, settings, caplog
):
    from tests.support import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens
    subscriber = Subscriber.objects.create(
        organization=page.organization, page=page, email="a@example.test"
    )
    services.subscriber_confirm(token=tokens.subscriber_token(subscriber.pk, "confirm"))
    incident = make_incident(page.sections.get().items.get().monitor)
    update = services.incident_update_post(incident=incident, status="identified", message="m")
    assert services.update_fan_out(update_id=str(update.pk)) == 0
    assert "status update email failed" in caplog.text
    update.refresh_from_db()
    assert update.notified_at is not None
    assert update.recipients == 0


def test_update_emails_use_the_monitors_public_name(pro, mailbox):
    page, monitor = page_renaming(pro, "billing-db-primary", "Payments")
    subscriber = Subscriber.objects.create(organization=pro, page=page, email="a@example.test")
    services.subscriber_confirm(token=tokens.subscriber_token(subscriber.pk, "confirm"))
    incident = make_incident(monitor, title="billing-db-primary is down")
    update = services.incident_update_post(incident=incident, status="identified", message="m")
    assert services.update_fan_out(update_id=str(update.pk)) == 1
    message, body = _mail(mailbox.envelopes[0])
    assert "Payments is down" in message["Subject"]
    assert "billing-db-primary" not in message["Subject"]
    assert "billing-db-primary" not in body
