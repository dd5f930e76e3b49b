"""Apprise channel: one URL reaches any service Apprise supports (Slack, Telegram, ntfy...).

Config: `url`, an Apprise URL. It is a secret field because most such URLs embed the
service's token. Apprise reports only success or failure, never why, so every failure is
treated as temporary: a wrong token is retried until the retry budget runs out.
"""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import urlsplit

import apprise
from django.conf import settings
from rest_framework import serializers

from apps.alerts.channels.base import DeliveryError, Message, Transport, register
from apps.core import ssrf

_SEVERITY_TYPES = {
    "info": apprise.NotifyType.INFO,
    "warning": apprise.NotifyType.WARNING,
    "error": apprise.NotifyType.FAILURE,
    "critical": apprise.NotifyType.FAILURE,
}


# Apprise schemes that post to any host the tenant names; every other scheme talks to its
# service's own public API. These go through the SSRF guard like webhooks.
_RAW_HTTP_SCHEMES = {"json", "jsons", "xml", "xmls", "form", "forms"}


def guard(url: str) -> None:
    """Refuse a raw-HTTP Apprise URL whose host is or resolves to a private address."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in _RAW_HTTP_SCHEMES or not parts.hostname:
        return
    allow = settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS
    ssrf.check_literal(parts.hostname, allow_private=allow)
    if not allow:
        # An unresolvable name is Apprise's failure to report when it sends.
        with contextlib.suppress(ssrf.ResolutionFailed):
            ssrf.resolve_blocking(parts.hostname, parts.port or 443, allow_private=False)


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
        try:
            guard(value)
        except ssrf.BlockedTarget as exc:
            raise serializers.ValidationError(f"Target refused: {exc}.") from exc
        return value


@register
class AppriseTransport(Transport):
    kind = "apprise"
    config_serializer = AppriseConfigSerializer
    secret_fields = ("url",)

    def notify(self, message: Message) -> dict[str, Any]:
        try:
            guard(self.config["url"])  # again at send time: the name may resolve elsewhere now
        except ssrf.BlockedTarget as exc:
            raise DeliveryError(f"target refused: {exc}", permanent=True) from exc
        client = apprise.Apprise()
        if not client.add(self.config["url"]):
            raise DeliveryError("Apprise does not recognise the channel URL", permanent=True)
        kind = notify_type(message)
        ok = client.notify(title=message.title, body=message.body, notify_type=kind)
        if not ok:
            raise DeliveryError("Apprise reported a failed delivery", permanent=False)
        return {"notify_type": str(kind.value)}
