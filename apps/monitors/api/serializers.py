from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.urls import reverse
from rest_framework import serializers

from apps.core.api import StrictSerializer
from apps.monitors.configs import validate_config
from apps.monitors.models import CHECK_SETTINGS, CheckResult, Monitor, MonitorKind
from apps.monitors.recording import FINDINGS

_TAG = serializers.RegexField(r"^[a-z0-9][a-z0-9_.:-]{0,49}$", max_length=50)


class MonitorInput(StrictSerializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=100, required=False)
    kind = serializers.ChoiceField(choices=MonitorKind.choices)
    config = serializers.DictField(default=dict)
    interval_seconds = serializers.IntegerField(min_value=10, max_value=86_400, default=300)
    timeout_seconds = serializers.FloatField(min_value=0.5, max_value=60, default=10)
    failure_threshold = serializers.IntegerField(min_value=1, max_value=20, default=2)
    recovery_threshold = serializers.IntegerField(min_value=1, max_value=20, default=1)
    regions = serializers.ListField(
        child=serializers.CharField(max_length=32),
        default=lambda: ["default"],
        allow_empty=False,
        max_length=10,
    )
    quorum = serializers.IntegerField(min_value=1, max_value=10, default=1)
    tags = serializers.ListField(child=_TAG, default=list, max_length=20)
    critical = serializers.BooleanField(default=False)
    expected_response_time_ms = serializers.IntegerField(
        min_value=1, max_value=600_000, required=False, allow_null=True
    )
    # Below 50 % an objective means nothing; 100 % leaves no error budget to burn.
    slo_target_pct = serializers.DecimalField(
        max_digits=6,
        decimal_places=3,
        min_value=Decimal("50"),
        max_value=Decimal("99.999"),
        allow_null=True,
        default=None,
        coerce_to_string=False,
    )
    slo_window_days = serializers.ChoiceField(choices=[28, 30], default=30)
    paused = serializers.BooleanField(default=False)

    def validate_regions(self, regions: list[str]) -> list[str]:
        unknown = [r for r in regions if r not in settings.HEALTHORCH_REGIONS]
        if unknown:
            raise serializers.ValidationError(
                f"Unknown region {unknown[0]!r}; available: {', '.join(settings.HEALTHORCH_REGIONS)}."
            )
        return list(dict.fromkeys(regions))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        kind = attrs.get("kind") or self.context["monitor"].kind
        if "config" in attrs:
            attrs["config"], secret = validate_config(kind, attrs["config"])
            if secret:
                attrs["secret"] = secret
        regions = attrs.get("regions") or (
            self.context["monitor"].regions if self.partial else ["default"]
        )
        if attrs.get("quorum", 1) > len(regions):
            raise serializers.ValidationError({"quorum": ["Cannot exceed the number of regions."]})
        if self.partial and "kind" in attrs and attrs["kind"] != self.context["monitor"].kind:
            raise serializers.ValidationError({"kind": ["The kind of a monitor cannot change."]})
        if self.partial:
            attrs.pop("kind", None)
        return attrs


class MonitorOutput(serializers.ModelSerializer):
    # From MonitorSchedule (None when nothing is pending: paused, or before a heartbeat's
    # first ping); rendered like the model's own datetimes.
    next_check_at = serializers.DateTimeField(read_only=True, allow_null=True)
    ping_url = serializers.SerializerMethodField()
    has_secret = serializers.SerializerMethodField()
    slo_target_pct = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = Monitor
        fields = [
            "id",
            "name",
            "slug",
            "kind",
            "config",
            "has_secret",
            *CHECK_SETTINGS,
            "paused_reason",
            "status",
            "status_changed_at",
            "consecutive_failures",
            "last_checked_at",
            "last_up_at",
            "next_check_at",
            "ping_url",
            "last_ping_at",
            "created_at",
            "updated_at",
        ]

    def get_ping_url(self, monitor: Monitor) -> str | None:
        if monitor.ping_token is None:
            return None
        path = reverse("ping", kwargs={"token": monitor.ping_token})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_has_secret(self, monitor: Monitor) -> bool:
        return bool(monitor.secret)


class ResultOutput(serializers.ModelSerializer):
    class Meta:
        model = CheckResult
        fields = ["id", "checked_at", "region", *FINDINGS]
