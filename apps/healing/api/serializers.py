from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.core.actors import ApiKeyRef
from apps.core.api import StrictSerializer
from apps.healing.actions import REGISTRY
from apps.healing.engine import CONDITIONS
from apps.healing.models import (
    HealingAttempt,
    HealingPolicy,
    Verification,
)
from apps.incidents.models import Severity
from apps.monitors.models import Monitor


class HealingPolicyInput(StrictSerializer):
    name = serializers.CharField(max_length=200)
    enabled = serializers.BooleanField(default=True)
    monitor = serializers.UUIDField(required=False, allow_null=True)
    tag = serializers.CharField(max_length=64, required=False, allow_blank=True)
    action_kind = serializers.ChoiceField(choices=REGISTRY.names())
    action_config = serializers.DictField(
        required=False,
        help_text="webhook: {url, secret?, timeout_seconds?}; http_request: {method?, url, "
        "headers?, body?, expected_status?, timeout_seconds?}; noop: {}. Secret fields "
        "(webhook secret, http_request headers) are write-only.",
    )
    rules = serializers.ListField(
        child=serializers.ChoiceField(choices=CONDITIONS), required=False, max_length=20
    )
    severities = serializers.ListField(
        child=serializers.ChoiceField(choices=Severity.choices),
        required=False,
        allow_empty=False,
        max_length=4,
    )
    max_attempts = serializers.IntegerField(min_value=1, max_value=20, required=False)
    cooldown_minutes = serializers.IntegerField(min_value=0, max_value=1440, required=False)
    verify_after_seconds = serializers.IntegerField(min_value=0, max_value=3600, required=False)
    escalate_on_failure = serializers.BooleanField(required=False)
    auto = serializers.BooleanField(
        required=False, help_text="run without a person (needs auto_orchestration)"
    )
    use_anomaly = serializers.BooleanField(
        required=False, help_text="let the anomaly model act (needs ml_healing)"
    )
    priority = serializers.IntegerField(min_value=-1000, max_value=1000, required=False)

    def validate_monitor(self, value: Any) -> Monitor | None:
        if value is None:
            return None
        monitor = Monitor.objects.for_org(self.context["org"]).filter(pk=value).first()
        if monitor is None:
            raise serializers.ValidationError("No such monitor in this organization.")
        return monitor

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not self.partial:
            has_monitor = attrs.get("monitor") is not None
            has_tag = bool(attrs.get("tag"))
            if has_monitor == has_tag:
                raise serializers.ValidationError(
                    {"monitor": ["Give exactly one of monitor or tag."]}
                )
        if "severities" in attrs:
            attrs["severities"] = [s for s in Severity.values if s in attrs["severities"]]
        return attrs


class HealingPolicyOutput(serializers.ModelSerializer):
    secret_fields = serializers.SerializerMethodField()

    class Meta:
        model = HealingPolicy
        fields = [
            "id",
            "name",
            "enabled",
            "monitor",
            "tag",
            "action_kind",
            "action_config",
            "secret_fields",
            "rules",
            "severities",
            "max_attempts",
            "cooldown_minutes",
            "verify_after_seconds",
            "escalate_on_failure",
            "auto",
            "use_anomaly",
            "priority",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_secret_fields(self, policy: HealingPolicy) -> list[str]:
        cls = REGISTRY.get(policy.action_kind)
        return list(cls.secret_fields) if cls else []


class HealingPolicyCreatedOutput(HealingPolicyOutput):
    secrets = serializers.SerializerMethodField(help_text="The secret config, shown this once.")

    class Meta(HealingPolicyOutput.Meta):
        fields = [*HealingPolicyOutput.Meta.fields, "secrets"]
        read_only_fields = fields

    def get_secrets(self, policy: HealingPolicy) -> dict[str, Any]:
        return self.context.get("secrets", {})


class HealingAttemptOutput(serializers.ModelSerializer):
    policy_name = serializers.CharField(source="policy.name", default=None, allow_null=True)
    verification = serializers.ChoiceField(choices=Verification.choices)
    # Who asked for a manual run: `requested_by` (a user id) or this API key; both null: the
    # engine on its own.
    requested_by_key = ApiKeyRef(allow_null=True, read_only=True)

    class Meta:
        model = HealingAttempt
        fields = [
            "id",
            "incident",
            "monitor",
            "policy",
            "policy_name",
            "decision",
            "path",
            "condition",
            "action_kind",
            "explanation",
            "inputs",
            "status",
            "automatic",
            "requested_by",
            "requested_by_key",
            "outcome",
            "error",
            "started_at",
            "finished_at",
            "duration_ms",
            "verification",
            "verify_due_at",
            "verified_at",
            "escalated",
            "created_at",
        ]
        read_only_fields = fields


class RootCauseEvidenceOutput(serializers.Serializer):
    kind = serializers.CharField()
    title = serializers.CharField()
    score = serializers.FloatField()
    details = serializers.DictField()


class RootCauseOutput(serializers.Serializer):
    incident = serializers.UUIDField()
    summary = serializers.CharField()
    summary_source = serializers.ChoiceField(choices=["deterministic", "llm"])
    llm_error = serializers.CharField(allow_blank=True)
    evidence = RootCauseEvidenceOutput(many=True)
    window = serializers.DictField()
