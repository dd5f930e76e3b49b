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

Delivery goes through the outbound guard (`apps.core.outbound`): the URL's name is resolved
once when sending, every address is vetted (internal ones refused unless the operator allows
private targets) and the POST connects to exactly that address, so a name re-pointed at an
internal address after the channel was saved, even between the check and the connection, is
refused before any byte leaves. A redirect is never followed: it fails the delivery
permanently (a receiver that moved must be re-entered, and re-vetted, by the tenant).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from rest_framework import serializers

from apps.alerts.channels.base import (
    DeliveryError,
    Message,
    Transport,
    is_permanent_status,
    register,
)
from apps.core import outbound, ssrf
from apps.core.plugins import (
    ensure_signing_secret,
    validate_headers,
    validate_target_url,
)
from apps.core.signing import sign

TIMEOUT_SECONDS = 10
USER_AGENT = "healthorch-webhook/1"  # after the tenant's headers: theirs cannot replace it
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


class WebhookConfigSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000)
    secret = serializers.CharField(required=False, min_length=16, max_length=200)
    headers = serializers.DictField(
        child=serializers.CharField(max_length=1000, allow_blank=True), required=False
    )

    def validate_url(self, value: str) -> str:
        return validate_target_url(value)

    def validate_headers(self, value: dict[str, str]) -> dict[str, str]:
        return validate_headers(value, reserved=RESERVED_HEADERS)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        ensure_signing_secret(attrs, self.context)
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

    def notify(self, message: Message) -> dict[str, Any]:
        url = self.config["url"]
        body = json.dumps(payload(message), separators=(",", ":")).encode()
        timestamp = int(time.time())
        headers = {
            **self.config.get("headers", {}),
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Healthorch-Timestamp": str(timestamp),
            "X-Healthorch-Signature": sign(self.config["secret"], timestamp, body),
        }
        try:
            # Streamed and never read: the receiver's response body is never needed, and a
            # hostile one could be arbitrarily large.
            response = outbound.request(
                "POST",
                url,
                guard=outbound.Guard.for_tenant(),
                data=body,
                headers=headers,
                timeout=self.timeout,
            )
        except ssrf.BlockedTarget as exc:
            raise DeliveryError(f"webhook target blocked: {exc}", permanent=True) from exc
        except ssrf.ResolutionFailed as exc:
            raise DeliveryError(str(exc), permanent=False) from exc
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
