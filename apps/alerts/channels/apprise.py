"""Apprise channel: one URL reaches any service Apprise supports (Slack, Telegram, ntfy...).

Config: `url`, an Apprise URL. It is a secret field because most such URLs embed the
service's token. Apprise reports only success or failure, never why, so every failure is
treated as temporary: a wrong token is retried until the retry budget runs out.
"""

from __future__ import annotations

from typing import Any

import apprise
from rest_framework import serializers

from apps.alerts.channels.base import DeliveryError, Message, Transport, register

_SEVERITY_TYPES = {
    "info": apprise.NotifyType.INFO,
    "warning": apprise.NotifyType.WARNING,
    "error": apprise.NotifyType.FAILURE,
    "critical": apprise.NotifyType.FAILURE,
}


def notify_type(message: Message) -> apprise.NotifyType:
    if message.event == "resolved":
        return apprise.NotifyType.SUCCESS
    return _SEVERITY_TYPES[message.severity]


class AppriseConfigSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000)

    def validate_url(self, value: str) -> str:
        if not apprise.Apprise().add(value):
            # Apprise's own reason goes to its logger only; do not echo the URL (a secret).
            raise serializers.ValidationError("Apprise does not recognise this URL.")
        return value


@register
class AppriseTransport(Transport):
    kind = "apprise"
    config_serializer = AppriseConfigSerializer
    secret_fields = ("url",)

    def notify(self, message: Message) -> dict[str, Any]:
        client = apprise.Apprise()
        if not client.add(self.config["url"]):
            raise DeliveryError("Apprise does not recognise the channel URL", permanent=True)
        kind = notify_type(message)
        ok = client.notify(title=message.title, body=message.body, notify_type=kind)
        if not ok:
            raise DeliveryError("Apprise reported a failed delivery", permanent=False)
        return {"notify_type": str(kind.value)}
