"""Webhook channel: a signed JSON POST to a tenant's URL.

Config: `url` (http/https), `secret` (HMAC key; generated with `secrets.token_urlsafe(32)`
when omitted at save time, so the caller must store it and show it to the tenant once),
optional `headers` (extra request headers).

Request body, compact JSON, exactly these keys:

    {"event": "opened|escalated|acknowledged|resolved|flapping|test",
     "severity": "info|warning|error|critical",
     "title": str, "body": str,
     "incident_id": str | null, "monitor": str | null, "url": str | null,
     "occurred_at": ISO 8601 with offset,
     "extra": object}

Headers:

    X-Healthorch-Timestamp: <unix seconds>
    X-Healthorch-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>" with secret>

Receivers verify with `verify_signature` (or its equivalent): signing the timestamp with the
body and rejecting old timestamps stops a captured request being replayed later.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from rest_framework import serializers

from apps.alerts.channels.base import (
    DeliveryError,
    Message,
    Transport,
    is_permanent_status,
    register,
)
from apps.core import ssrf
from apps.core.signing import sign

TIMEOUT_SECONDS = 10
# Headers the transport owns: a tenant header must not forge the signature or break framing.
RESERVED_HEADERS = frozenset(
    {
        "host",
        "content-type",
        "content-length",
        "transfer-encoding",
        "x-healthorch-timestamp",
        "x-healthorch-signature",
    }
)


def _allow_private() -> bool:
    return bool(settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS)


class WebhookConfigSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000)
    secret = serializers.CharField(required=False, min_length=16, max_length=200)
    headers = serializers.DictField(
        child=serializers.CharField(max_length=1000, allow_blank=True), required=False
    )

    def validate_url(self, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise serializers.ValidationError("Use an http:// or https:// URL.")
        try:
            ssrf.check_literal(parts.hostname, allow_private=_allow_private())
        except ssrf.BlockedTarget as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return value

    def validate_headers(self, value: dict[str, str]) -> dict[str, str]:
        if len(value) > 20:
            raise serializers.ValidationError("At most 20 headers.")
        for name, header_value in value.items():
            if not name or any(c in name for c in " :\r\n") or name.lower() in RESERVED_HEADERS:
                raise serializers.ValidationError(f"Header {name!r} cannot be set.")
            if "\r" in header_value or "\n" in header_value:
                raise serializers.ValidationError(f"Header {name!r} has a line break.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("secret"):
            if self.context.get("stored"):
                # A secret invented per delivery would make every signature unverifiable.
                raise serializers.ValidationError({"secret": "A stored webhook needs its secret."})
            attrs["secret"] = secrets.token_urlsafe(32)
        attrs.setdefault("headers", {})
        return attrs


def payload(message: Message) -> dict[str, Any]:
    return {
        "event": message.event,
        "severity": message.severity,
        "title": message.title,
        "body": message.body,
        "incident_id": message.incident_id,
        "monitor": message.monitor_name,
        "url": message.url,
        "occurred_at": message.occurred_at.isoformat(),
        "extra": message.extra,
    }


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@register
class WebhookTransport(Transport):
    kind = "webhook"
    config_serializer = WebhookConfigSerializer
    secret_fields = ("secret",)
    timeout: float = TIMEOUT_SECONDS

    def _guard(self, url: str) -> None:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        allow = _allow_private()
        # Checked again here, not only at save time: the name may have been re-pointed at an
        # internal address since. requests resolves once more itself, so a rebind in that
        # window is not caught; redirects are never followed, so they cannot bypass it.
        try:
            ssrf.check_literal(host, allow_private=allow)
            ssrf.resolve_blocking(host, port, allow_private=allow)
        except ssrf.BlockedTarget as exc:
            raise DeliveryError(f"webhook target blocked: {exc}", permanent=True) from exc
        except ssrf.ResolutionFailed as exc:
            raise DeliveryError(str(exc), permanent=False) from exc

    def notify(self, message: Message) -> dict[str, Any]:
        url = self.config["url"]
        self._guard(url)
        body = json.dumps(payload(message), separators=(",", ":")).encode()
        timestamp = int(time.time())
        headers = {
            **self.config.get("headers", {}),
            "Content-Type": "application/json",
            "User-Agent": "healthorch-webhook/1",
            "X-Healthorch-Timestamp": str(timestamp),
            "X-Healthorch-Signature": sign(self.config["secret"], timestamp, body),
        }
        try:
            # stream=True and no read: the receiver's response body is never needed, and a
            # hostile one could be arbitrarily large.
            response = requests.post(
                url,
                data=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
            )
        except requests.Timeout as exc:
            raise DeliveryError(f"webhook timed out: {exc}", permanent=False) from exc
        except requests.RequestException as exc:
            raise DeliveryError(f"webhook connection failed: {exc}", permanent=False) from exc
        with response:
            status = response.status_code
            if 200 <= status < 300:
                return {"status_code": status, "timestamp": timestamp}
            retry_after = _retry_after(response) if status in (429, 503) else None
        if 300 <= status < 400:
            raise DeliveryError(f"webhook answered a redirect ({status})", permanent=True)
        raise DeliveryError(
            f"webhook answered {status}",
            permanent=is_permanent_status(status),
            retry_after=retry_after,
        )
