"""Apprise channel: one URL reaches any service Apprise supports (Slack, Telegram, ntfy...).

Config: `url`, an Apprise URL. It is a secret field because most such URLs embed the
service's token. Apprise reports only success or failure, never why, so every failure is
treated as temporary: a wrong token is retried until the retry budget runs out.

Outbound guard. Many Apprise services are self-hosted (ntfy, Gotify, Mattermost, an Apprise
API, raw JSON/XML/form posts, SMTP...), so the host in the URL is the tenant's to choose. Which
schemes carry a host is Apprise's own knowledge: a plugin whose URL template has a `host`
token that is not mapped onto another field (some plugins reuse the host position for an id).
`url_host` asks Apprise's URL parser and plugin registry, so a scheme added to Apprise is
covered without a list here.

- At save time the host is refused if it is a literal internal address or a loopback name
  (unless the operator allows private targets). Names are not resolved then: the answer that
  matters is the one at send time.
- At send time the delivery runs inside `outbound.pinned_lookups`: the host is resolved and
  vetted before Apprise runs (a refused address fails the delivery permanently, before any
  byte leaves), and every lookup Apprise's plugin then makes, for that host, for a redirect
  or for the service's own API, is vetted too and answered with the address vetted first.
  Apprise's plugins call `requests` and `smtplib` themselves, so healthorch cannot hand them
  a pinned session; pinning their lookups is the one place that covers every plugin. Apprise
  runs the plugin in this thread (`async_mode=False`) or in a worker carrying a copy of this
  context, which the pin follows.
"""

from __future__ import annotations

from typing import Any

import apprise
from apprise import plugins as apprise_plugins
from apprise.manager_plugins import NotificationManager
from rest_framework import serializers

from apps.alerts.channels.base import DeliveryError, Message, Transport, register
from apps.core import outbound, ssrf

_SEVERITY_TYPES = {
    "info": apprise.NotifyType.INFO,
    "warning": apprise.NotifyType.WARNING,
    "error": apprise.NotifyType.FAILURE,
    "critical": apprise.NotifyType.FAILURE,
}


def scheme_names_a_host(scheme: str) -> bool:
    """Does this Apprise scheme's URL carry a network host (per the plugin's own template)?"""
    plugins = NotificationManager()
    if scheme not in plugins:
        return False
    token = getattr(plugins[scheme], "template_tokens", {}).get("host")
    return token is not None and token.get("map_to", "host") == "host"


def url_host(url: str) -> tuple[str, int] | None:
    """(host, port) of an Apprise URL whose scheme carries a network host, else None."""
    parsed = apprise_plugins.url_to_dict(url)
    if not parsed or not parsed.get("host"):
        return None
    if not scheme_names_a_host(str(parsed.get("schema", "")).lower()):
        return None
    port = parsed.get("port") or (443 if parsed.get("secure") else 80)
    return str(parsed["host"]), int(port)


def check_saved_url(url: str) -> None:
    """Save-time check: a literal internal address or loopback name is refused."""
    target = url_host(url)
    if target is not None:
        outbound.Guard.for_tenant().check_hop(target[0])


def notify_type(message: Message) -> apprise.NotifyType:
    if message.event == "resolved":
        return apprise.NotifyType.SUCCESS
    return _SEVERITY_TYPES[message.severity]


class AppriseConfigSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000)

    def validate_url(self, value: str) -> str:
        # The target first: a URL towards an internal address is refused as such, whether or
        # not Apprise would accept the rest of it.
        try:
            check_saved_url(value)
        except ssrf.BlockedTarget as exc:
            raise serializers.ValidationError(f"Target refused: {exc}.") from exc
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
        url = self.config["url"]
        target = url_host(url)
        kind = notify_type(message)
        try:
            # Again at send time: the name may resolve elsewhere now (see the module notes).
            with outbound.pinned_lookups(
                outbound.Guard.for_tenant(), *([target] if target else [])
            ) as scope:
                client = apprise.Apprise(asset=apprise.AppriseAsset(async_mode=False))
                if not client.add(url):
                    raise DeliveryError(
                        "Apprise does not recognise the channel URL", permanent=True
                    )
                ok = client.notify(title=message.title, body=message.body, notify_type=kind)
        except ssrf.BlockedTarget as exc:
            raise DeliveryError(f"target refused: {exc}", permanent=True) from exc
        if scope.refused:
            raise DeliveryError(f"target refused: {scope.refused[0]}", permanent=True)
        if not ok:
            raise DeliveryError("Apprise reported a failed delivery", permanent=False)
        return {"notify_type": str(kind.value)}
