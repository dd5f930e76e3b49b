"""Alert channel plugins against real peers on 127.0.0.1: an SMTP server (aiosmtpd) and an
HTTP server (tests.monitors.targets). No database."""

from __future__ import annotations

import email
import json
import time
from datetime import UTC, datetime

import pytest
from rest_framework.exceptions import ValidationError

from apps.alerts.channels import REGISTRY, DeliveryError, Message, transport_for
from apps.alerts.channels.apprise import AppriseTransport
from apps.alerts.channels.email import EmailTransport
from apps.alerts.channels.webhook import WebhookTransport
from apps.core.signing import sign, verify_signature
from tests.monitors.targets import closed_port, serve_http

SECRET = "s3cret-s3cret-s3cret-s3cret"
OCCURRED = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def message(**overrides) -> Message:
    fields = {
        "title": "api.example.com is down",
        "body": "Connection refused from 3 regions.",
        "severity": "critical",
        "event": "opened",
        "incident_id": "inc_123",
        "monitor_name": "API",
        "url": "https://app.healthorch.local/incidents/inc_123",
        "occurred_at": OCCURRED,
        "extra": {"regions": ["eu", "us"]},
    }
    return Message(**{**fields, **overrides})


@pytest.fixture
def http_target():
    with serve_http() as target:
        yield target


# --- base -----------------------------------------------------------------------------------


def test_every_kind_is_registered():
    assert set(REGISTRY) == {"email", "webhook", "apprise"}


def test_an_unknown_kind_is_a_permanent_error():
    with pytest.raises(DeliveryError) as caught:
        transport_for("carrier-pigeon", {})
    assert caught.value.permanent


def test_a_bad_stored_config_is_a_permanent_error():
    with pytest.raises(DeliveryError) as caught:
        transport_for("email", {"to": []})
    assert caught.value.permanent


def test_a_message_refuses_an_unknown_severity_or_event():
    with pytest.raises(ValueError, match="severity"):
        message(severity="apocalyptic")
    with pytest.raises(ValueError, match="event"):
        message(event="exploded")


# --- email ----------------------------------------------------------------------------------


def test_email_arrives_with_the_severity_in_the_subject_and_every_recipient(mailbox):
    transport = transport_for("email", {"to": ["ops@example.com", "cto@example.com"]})

    details = transport.notify(message())

    assert details["sent"] == 1
    [envelope] = mailbox.envelopes
    assert envelope.rcpt_tos == ["ops@example.com", "cto@example.com"]
    mail = email.message_from_bytes(envelope.content)
    assert mail["Subject"] == "[healthorch] critical: api.example.com is down"
    assert mail.get_content_type() == "text/plain"
    text = mail.get_payload(decode=True).decode()
    assert "Connection refused from 3 regions." in text
    assert "https://app.healthorch.local/incidents/inc_123" in text


def test_a_title_with_line_breaks_still_makes_a_one_line_subject(mailbox):
    transport_for("email", {"to": ["ops@example.com"]}).notify(message(title="down\r\nBcc: x@y"))

    mail = email.message_from_bytes(mailbox.envelopes[0].content)
    assert mail["Subject"] == "[healthorch] critical: down Bcc: x@y"
    assert mail["Bcc"] is None


def test_refused_recipients_are_a_permanent_error(mailbox):
    transport = transport_for("email", {"to": ["nobody@example.com"]})

    with pytest.raises(DeliveryError) as caught:
        transport.notify(message())

    assert caught.value.permanent
    assert mailbox.envelopes == []


def test_an_unreachable_smtp_server_is_a_temporary_error(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    with closed_port() as port:
        settings.EMAIL_PORT = port
        with pytest.raises(DeliveryError) as caught:
            transport_for("email", {"to": ["ops@example.com"]}).notify(message())
    assert not caught.value.permanent


@pytest.mark.parametrize(
    "config",
    [{}, {"to": []}, {"to": ["not-an-address"]}, {"to": [f"u{i}@example.com" for i in range(21)]}],
    ids=["missing", "empty", "malformed", "too-many"],
)
def test_email_config_needs_one_to_twenty_valid_addresses(config):
    with pytest.raises(ValidationError) as caught:
        EmailTransport.clean_config(config)
    assert "to" in caught.value.detail


# --- webhook --------------------------------------------------------------------------------


def webhook(url: str, **config) -> WebhookTransport:
    return transport_for("webhook", {"url": url, "secret": SECRET, **config})


def test_webhook_arrives_signed_with_the_documented_body(http_target):
    url = http_target.route("/hook", status=204, body="")

    details = webhook(url, headers={"Authorization": "Bearer abc"}).notify(message())

    assert details["status_code"] == 204
    [seen] = http_target.requests
    assert seen.method == "POST"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["authorization"] == "Bearer abc"
    timestamp = seen.headers["x-healthorch-timestamp"]
    assert verify_signature(SECRET, timestamp, seen.body, seen.headers["x-healthorch-signature"])
    assert json.loads(seen.body) == {
        "event": "opened",
        "severity": "critical",
        "title": "api.example.com is down",
        "body": "Connection refused from 3 regions.",
        "incident_id": "inc_123",
        "monitor": "API",
        "url": "https://app.healthorch.local/incidents/inc_123",
        "occurred_at": "2026-11-23T12:00:00+00:00",
        "extra": {"regions": ["eu", "us"]},
    }


def test_a_tampered_body_fails_verification(http_target):
    webhook(http_target.route("/hook")).notify(message())
    [seen] = http_target.requests
    tampered = seen.body.replace(b"critical", b"info")

    timestamp = seen.headers["x-healthorch-timestamp"]
    assert not verify_signature(SECRET, timestamp, tampered, seen.headers["x-healthorch-signature"])


def test_an_old_timestamp_fails_verification_even_when_correctly_signed():
    body = b'{"event":"test"}'
    old = int(time.time()) - 301

    assert not verify_signature(SECRET, old, body, sign(SECRET, old, body))
    assert verify_signature(SECRET, old, body, sign(SECRET, old, body), tolerance_seconds=400)


def test_a_signature_with_another_secret_or_no_prefix_fails_verification():
    body = b"{}"
    now = int(time.time())
    assert not verify_signature(SECRET, now, body, sign("another-secret-entirely", now, body))
    assert not verify_signature(SECRET, now, body, sign(SECRET, now, body).removeprefix("sha256="))
    assert not verify_signature(SECRET, "yesterday", body, sign(SECRET, now, body))


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(500, False), (502, False), (408, False), (400, True), (401, True), (404, True), (302, True)],
)
def test_webhook_failures_are_classified_by_status(http_target, status, permanent):
    url = http_target.route("/hook", status=status)

    with pytest.raises(DeliveryError) as caught:
        webhook(url).notify(message())

    assert caught.value.permanent is permanent
    assert caught.value.retry_after is None


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured_on_429_and_503(http_target, status):
    url = http_target.route("/hook", status=status, headers={"Retry-After": "30"})

    with pytest.raises(DeliveryError) as caught:
        webhook(url).notify(message())

    assert not caught.value.permanent
    assert caught.value.retry_after == 30


def test_retry_after_may_be_an_http_date(http_target):
    url = http_target.route(
        "/hook", status=429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}
    )

    with pytest.raises(DeliveryError) as caught:
        webhook(url).notify(message())

    assert caught.value.retry_after == 0


def test_a_refused_connection_is_a_temporary_error():
    with closed_port() as port, pytest.raises(DeliveryError) as caught:
        webhook(f"http://127.0.0.1:{port}/hook").notify(message())
    assert not caught.value.permanent


def test_a_timeout_is_a_temporary_error(http_target, monkeypatch):
    monkeypatch.setattr(WebhookTransport, "timeout", 0.3)
    url = http_target.route("/hook", hang=True)

    with pytest.raises(DeliveryError) as caught:
        webhook(url).notify(message())

    assert not caught.value.permanent


def test_a_private_target_is_blocked_at_send_time_when_private_targets_are_off(
    http_target, settings
):
    transport = webhook(http_target.route("/hook"))
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = False

    with pytest.raises(DeliveryError) as caught:
        transport.notify(message())

    assert caught.value.permanent
    assert http_target.requests == []


def test_a_private_target_is_refused_in_config_when_private_targets_are_off(settings):
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = False

    with pytest.raises(ValidationError) as caught:
        WebhookTransport.clean_config({"url": "http://169.254.169.254/latest/meta-data"})
    assert "url" in caught.value.detail
    with pytest.raises(DeliveryError) as stored:
        webhook("http://127.0.0.1:8000/hook")
    assert stored.value.permanent


def test_a_secret_is_generated_when_omitted_and_kept_apart_from_public_config():
    config = WebhookTransport.clean_config({"url": "https://hooks.example.com/in"})

    assert len(config["secret"]) >= 40
    public, secret = WebhookTransport.split_secrets(config)
    assert public == {"url": "https://hooks.example.com/in", "headers": {}}
    assert secret == {"secret": config["secret"]}


def test_a_stored_webhook_without_its_secret_is_a_permanent_error():
    with pytest.raises(DeliveryError) as caught:
        transport_for("webhook", {"url": "https://hooks.example.com/in"})
    assert caught.value.permanent


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"url": "ftp://hooks.example.com/in"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://hooks.example.com/in", "secret": "short"}, "secret"),
        (
            {"url": "https://hooks.example.com/in", "headers": {"X-Healthorch-Signature": "x"}},
            "headers",
        ),
        ({"url": "https://hooks.example.com/in", "headers": {"X-Evil": "a\r\nHost: b"}}, "headers"),
        ({"url": "https://hooks.example.com/in", "headers": "nope"}, "headers"),
    ],
    ids=[
        "scheme",
        "malformed",
        "short-secret",
        "reserved-header",
        "header-newline",
        "headers-type",
    ],
)
def test_webhook_config_errors_name_the_field(config, field):
    with pytest.raises(ValidationError) as caught:
        WebhookTransport.clean_config(config)
    assert field in caught.value.detail


# --- apprise --------------------------------------------------------------------------------


def apprise_url(target, path: str) -> str:
    return f"json://127.0.0.1:{target.port}{path}"


def test_apprise_json_notification_reaches_the_local_server(http_target):
    http_target.route("/notify")

    details = transport_for("apprise", {"url": apprise_url(http_target, "/notify")}).notify(
        message(severity="warning")
    )

    assert details == {"notify_type": "warning"}
    [seen] = http_target.requests
    sent = json.loads(seen.body)
    assert sent["title"] == "api.example.com is down"
    assert sent["message"] == "Connection refused from 3 regions."
    assert sent["type"] == "warning"


@pytest.mark.parametrize(
    ("severity", "event", "expected"),
    [
        ("info", "opened", "info"),
        ("error", "escalated", "failure"),
        ("critical", "opened", "failure"),
        ("critical", "resolved", "success"),
    ],
)
def test_apprise_notify_type_follows_severity_and_resolution(
    http_target, severity, event, expected
):
    http_target.route("/notify")

    transport_for("apprise", {"url": apprise_url(http_target, "/notify")}).notify(
        message(severity=severity, event=event)
    )

    assert json.loads(http_target.requests[0].body)["type"] == expected


def test_an_apprise_failure_is_a_temporary_error(http_target):
    http_target.route("/notify", status=500)

    with pytest.raises(DeliveryError) as caught:
        transport_for("apprise", {"url": apprise_url(http_target, "/notify")}).notify(message())

    assert not caught.value.permanent


@pytest.mark.parametrize("url", ["carrierpigeon://coop/1", "", "just text"])
def test_apprise_config_rejects_urls_apprise_does_not_recognise(url):
    with pytest.raises(ValidationError) as caught:
        AppriseTransport.clean_config({"url": url})
    assert "url" in caught.value.detail


def test_the_apprise_url_is_a_secret():
    config = AppriseTransport.clean_config({"url": "json://hooks.example.com/in"})

    assert AppriseTransport.split_secrets(config) == ({}, {"url": "json://hooks.example.com/in"})


def test_raw_http_apprise_urls_are_refused_towards_private_targets(settings, http_target):
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(ValidationError):
        AppriseTransport.clean_config({"url": "json://169.254.169.254/latest"})
    # A URL stored while private targets were allowed is checked again when sending.
    http_target.route("/notify")
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = True
    transport = transport_for("apprise", {"url": apprise_url(http_target, "/notify")})
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = False
    with pytest.raises(DeliveryError) as caught:
        transport.notify(message())
    assert caught.value.permanent
    assert http_target.requests == []
