"""Email channel: plain-text mail through the project's EMAIL_BACKEND.

Config: `to`, 1-20 addresses. The sender is DEFAULT_FROM_EMAIL.
"""

from __future__ import annotations

import smtplib
from typing import Any

from django.core.mail import EmailMessage
from rest_framework import serializers

from apps.alerts.channels.base import DeliveryError, Message, Transport, register


class EmailConfigSerializer(serializers.Serializer):
    to = serializers.ListField(
        child=serializers.EmailField(), min_length=1, max_length=20, allow_empty=False
    )


def _subject(message: Message) -> str:
    # A newline in a header is refused by Django (header injection); a monitor name or title
    # typed by a tenant must not make the alert undeliverable.
    title = " ".join(message.title.split())
    return f"[healthorch] {message.severity}: {title}"


def _body(message: Message) -> str:
    lines = [message.body, ""]
    if message.monitor_name:
        lines.append(f"Monitor: {message.monitor_name}")
    if message.incident_id:
        lines.append(f"Incident: {message.incident_id}")
    lines.append(f"Event: {message.event}")
    lines.append(f"Occurred at: {message.occurred_at.isoformat()}")
    if message.url:
        lines.append(f"Details: {message.url}")
    return "\n".join(lines) + "\n"


@register
class EmailTransport(Transport):
    kind = "email"
    config_serializer = EmailConfigSerializer

    def notify(self, message: Message) -> dict[str, Any]:
        recipients = list(self.config["to"])
        mail = EmailMessage(subject=_subject(message), body=_body(message), to=recipients)
        try:
            sent = mail.send(fail_silently=False)
        except smtplib.SMTPRecipientsRefused as exc:
            # Every recipient was refused: the addresses are wrong, retrying will not fix them.
            raise DeliveryError(f"recipients refused: {exc.recipients}", permanent=True) from exc
        except (smtplib.SMTPException, OSError) as exc:
            # Includes refused connections, timeouts and 4xx/5xx server replies: the relay
            # may be down or throttling, so let the retry policy decide.
            raise DeliveryError(f"smtp error: {exc}", permanent=False) from exc
        return {"recipients": recipients, "sent": sent}
