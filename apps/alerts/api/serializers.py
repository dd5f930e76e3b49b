from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.alerts.channels import REGISTRY
from apps.alerts.models import (
    Channel,
    ChannelKind,
    EscalationPolicy,
    Notification,
    NotificationAttempt,
)
from apps.core.api import StrictSerializer
from apps.incidents.models import Severity


def _severities(**kwargs: Any) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.ChoiceField(choices=Severity.choices),
        allow_empty=False,
        max_length=4,
        **kwargs,
    )


class ChannelInput(StrictSerializer):
    kind = serializers.ChoiceField(choices=ChannelKind.choices)
    name = serializers.CharField(max_length=200)
    config = serializers.DictField(
        help_text="email: {to: [..]}; webhook: {url, secret?, headers?}; apprise: {url}. "
        "Secret fields are write-only."
    )
    enabled = serializers.BooleanField(default=True)
    notify_on_resolved = serializers.BooleanField(default=True)
    severities = _severities(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if self.partial and "kind" in attrs:
            if attrs["kind"] != self.context["channel"].kind:
                raise serializers.ValidationError(
                    {"kind": ["The kind of a channel cannot change."]}
                )
            attrs.pop("kind")
        return attrs


class ChannelOutput(serializers.ModelSerializer):
    secret_fields = serializers.SerializerMethodField(
        help_text="Names of config fields stored encrypted; their values are never returned."
    )

    class Meta:
        model = Channel
        fields = [
            "id",
            "kind",
            "name",
            "config",
            "secret_fields",
            "enabled",
            "disabled_reason",
            "notify_on_resolved",
            "severities",
            "created_at",
            "updated_at",
        ]

    def get_secret_fields(self, channel: Channel) -> list[str]:
        return list(REGISTRY[channel.kind].secret_fields) if channel.secret else []


class ChannelCreatedOutput(ChannelOutput):
    secrets = serializers.SerializerMethodField(
        help_text="The secret config values (e.g. a generated webhook secret), shown only now."
    )

    class Meta(ChannelOutput.Meta):
        fields = [*ChannelOutput.Meta.fields, "secrets"]

    def get_secrets(self, channel: Channel) -> dict[str, str]:
        return self.context.get("secrets", {})


class StepInput(StrictSerializer):
    delay_minutes = serializers.IntegerField(min_value=0, max_value=24 * 60)
    channels = serializers.ListField(
        child=serializers.UUIDField(), allow_empty=False, max_length=20
    )


class PolicyInput(StrictSerializer):
    name = serializers.CharField(max_length=200)
    severities = _severities()
    repeat = serializers.IntegerField(min_value=0, max_value=10, default=0)
    enabled = serializers.BooleanField(default=True)
    steps = StepInput(many=True, allow_empty=False, max_length=10)


class StepOutput(serializers.Serializer):
    position = serializers.IntegerField()
    delay_minutes = serializers.IntegerField()
    channels = serializers.SerializerMethodField()

    def get_channels(self, step) -> list[str]:
        return [str(c.pk) for c in step.channels.all()]


class PolicyOutput(serializers.ModelSerializer):
    steps = StepOutput(many=True, read_only=True)

    class Meta:
        model = EscalationPolicy
        fields = ["id", "name", "severities", "repeat", "enabled", "steps", "created_at"]


class AttemptOutput(serializers.ModelSerializer):
    class Meta:
        model = NotificationAttempt
        fields = ["number", "started_at", "duration_ms", "ok", "permanent", "error", "details"]


class NotificationOutput(serializers.ModelSerializer):
    channel_kind = serializers.CharField(source="channel.kind", read_only=True)
    channel_name = serializers.CharField(source="channel.name", read_only=True)
    title = serializers.SerializerMethodField()
    attempt_log = AttemptOutput(many=True, read_only=True, source="attempt_rows")

    class Meta:
        model = Notification
        fields = [
            "id",
            "channel",
            "channel_kind",
            "channel_name",
            "incident",
            "kind",
            "severity",
            "title",
            "idempotency_key",
            "status",
            "attempts",
            "max_attempts",
            "next_attempt_at",
            "is_group",
            "group",
            "sent_at",
            "last_error",
            "created_at",
            "attempt_log",
        ]

    def get_title(self, n: Notification) -> str:
        return n.payload.get("title", "")


class ChannelTestOutput(serializers.Serializer):
    ok = serializers.BooleanField()
    status = serializers.CharField()
    error = serializers.CharField(allow_blank=True)
    permanent = serializers.BooleanField()
    duration_ms = serializers.IntegerField()
    details = serializers.DictField()
    notification = serializers.UUIDField()
