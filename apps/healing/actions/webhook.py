"""`webhook`: a signed JSON POST to the customer's remediation endpoint (e.g. a restart hook).

Config: `url`, `secret` (generated when omitted; shown once), optional `timeout_seconds`
(default 10, at most 30). Signed exactly like alert webhooks (apps/alerts/channels/webhook.py):

    X-Healthorch-Timestamp: <unix seconds>
    X-Healthorch-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">
    X-Healthorch-Event: healing

Body: {"event": "healing", "attempt_id", "organization", "condition", "reason",
"incident": {"id", "title", "severity", "rule", "opened_at"}, "monitor": {"id", "name",
"slug", "tags"}}. Any 2xx is success; anything else, a timeout or a refused connection fails
the attempt.
"""

from __future__ import annotations

import json
import time
from typing import Any

from rest_framework import serializers

from apps.core.plugins import ensure_signing_secret, validate_target_url
from apps.core.signing import sign
from apps.healing.actions.base import (
    Action,
    ActionRequest,
    TimeoutField,
    register,
    send,
)


class WebhookActionConfig(serializers.Serializer):
    url = serializers.URLField(max_length=2000, validators=[validate_target_url])
    secret = serializers.CharField(required=False, min_length=16, max_length=200)
    timeout_seconds = TimeoutField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        ensure_signing_secret(attrs, self.context)
        return attrs


def body_for(request: ActionRequest) -> bytes:
    return json.dumps(
        {
            "event": "healing",
            "attempt_id": request.attempt_id,
            "organization": request.organization,
            "condition": request.condition,
            "reason": request.reason,
            "incident": request.incident,
            "monitor": request.monitor,
        },
        separators=(",", ":"),
    ).encode()


@register
class WebhookAction(Action):
    kind = "webhook"
    config_serializer = WebhookActionConfig
    secret_fields = ("secret",)

    def run(self, request: ActionRequest) -> dict[str, Any]:
        url = self.config["url"]
        body = body_for(request)
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "X-Healthorch-Event": "healing",
            "X-Healthorch-Timestamp": str(timestamp),
            "X-Healthorch-Signature": sign(self.config["secret"], timestamp, body),
        }
        return send("POST", url, label="webhook", timeout=self.timeout, data=body, headers=headers)
