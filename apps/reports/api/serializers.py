from __future__ import annotations

import base64
from datetime import timedelta

from rest_framework import serializers

from apps.core.api import StrictSerializer
from apps.reports.models import Schedule, validate_timezone
from apps.reports.periods import KINDS

MAX_ERROR_WINDOW = timedelta(days=90)


class SlaQuery(serializers.Serializer):
    period = serializers.ChoiceField(choices=KINDS, default="monthly")
    start = serializers.CharField(required=False, max_length=40)
    end = serializers.CharField(required=False, max_length=40)
    monitor = serializers.UUIDField(required=False)
    tag = serializers.CharField(required=False, max_length=64)
    format = serializers.ChoiceField(choices=["json", "csv", "pdf"], default="json")

    def validate(self, attrs: dict) -> dict:
        if "monitor" in attrs and "tag" in attrs:
            raise serializers.ValidationError({"tag": ["Give a monitor or a tag, not both."]})
        return attrs


class ErrorsQuery(serializers.Serializer):
    monitor = serializers.UUIDField(required=False)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    # Both parts by default; `checks` answers exactly what the report answered before logs.
    kind = serializers.ChoiceField(choices=["checks", "logs"], required=False)
    source = serializers.RegexField(r"^[A-Za-z0-9_.:-]{1,64}$", required=False)
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)
    cursor = serializers.CharField(required=False, max_length=40)

    def validate_cursor(self, value: str) -> int:
        try:
            offset = int(base64.urlsafe_b64decode(value.encode()).decode().removeprefix("o:"))
        except (ValueError, UnicodeDecodeError):
            raise serializers.ValidationError("Not a cursor this endpoint gave.") from None
        if offset < 0:
            raise serializers.ValidationError("Not a cursor this endpoint gave.")
        return offset

    def validate(self, attrs: dict) -> dict:
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and until <= since:
            raise serializers.ValidationError({"until": ["Must be after since."]})
        if since and until and until - since > MAX_ERROR_WINDOW:
            raise serializers.ValidationError({"since": ["At most 90 days at once."]})
        return attrs


class ReportSettingsSerializer(StrictSerializer):
    timezone = serializers.CharField(max_length=64, validators=[validate_timezone])
    exclude_maintenance = serializers.BooleanField()
    degraded_counts_as_up = serializers.BooleanField()
    schedule = serializers.ChoiceField(choices=Schedule.choices)
    last_sent_period = serializers.DateField(read_only=True, allow_null=True)

    def validate_timezone(self, value: str) -> str:
        from django.core.exceptions import ValidationError

        try:
            validate_timezone(value)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc
        return value


def errors_cursor(offset: int) -> str:
    """The opaque cursor of the error report's signature list (ErrorsQuery reads it back)."""
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()
