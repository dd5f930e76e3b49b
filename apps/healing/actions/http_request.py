"""`http_request`: a configured request to a cloud or orchestration API.

Config: `method` (GET/POST/PUT/PATCH/DELETE, default POST), `url`, optional `headers`
(treated as secret: they usually carry credentials; stored encrypted, never shown again),
optional `body` (a JSON value, sent as JSON), `expected_status` (list of codes; default any
2xx), `timeout_seconds` (default 10, at most 30).
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.plugins import validate_headers, validate_target_url
from apps.healing.actions.base import (
    Action,
    ActionRequest,
    TimeoutField,
    register,
    send,
)

_RESERVED = {"host", "content-length", "transfer-encoding"}


class HttpRequestConfig(serializers.Serializer):
    method = serializers.ChoiceField(
        choices=["GET", "POST", "PUT", "PATCH", "DELETE"], default="POST"
    )
    url = serializers.URLField(max_length=2000, validators=[validate_target_url])
    headers = serializers.DictField(
        child=serializers.CharField(max_length=2000, allow_blank=True), required=False
    )
    body = serializers.JSONField(required=False)
    expected_status = serializers.ListField(
        child=serializers.IntegerField(min_value=100, max_value=599),
        required=False,
        max_length=20,
    )
    timeout_seconds = TimeoutField()

    def validate_headers(self, value: dict[str, str]) -> dict[str, str]:
        return validate_headers(value, reserved=_RESERVED)


@register
class HttpRequestAction(Action):
    kind = "http_request"
    config_serializer = HttpRequestConfig
    secret_fields = ("headers",)

    def run(self, request: ActionRequest) -> dict[str, Any]:
        url = self.config["url"]
        kwargs: dict[str, Any] = {}
        if "body" in self.config:
            kwargs["json"] = self.config["body"]
        return send(
            self.config.get("method", "POST"),
            url,
            label="request",
            timeout=self.timeout,
            expected=self.config.get("expected_status"),
            headers=self.config.get("headers", {}),
            **kwargs,
        )
