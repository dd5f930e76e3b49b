from __future__ import annotations

import zoneinfo
from typing import Any

from croniter import croniter
from rest_framework import serializers

from apps.core.actors import ApiKeyRef
from apps.core.api import StrictSerializer
from apps.incidents import rules
from apps.incidents import windows as window_math
from apps.incidents.models import (
    AlertRule,
    Incident,
    IncidentEvent,
    MaintenanceWindow,
    MonitorDependency,
    Recurrence,
    Severity,
    WindowKind,
)

_TAG = serializers.RegexField(r"^[a-z0-9][a-z0-9_.:-]{0,49}$", max_length=50)


class UserRef(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()


class MonitorRef(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    slug = serializers.SlugField()
    status = serializers.CharField()


class EventOutput(serializers.ModelSerializer):
    # The user who acted, or the API key (one of the two; both null: the system).
    actor = UserRef(allow_null=True)
    actor_key = ApiKeyRef(allow_null=True)

    class Meta:
        model = IncidentEvent
        fields = ["id", "kind", "at", "actor", "actor_key", "note", "count", "data"]


class IncidentOutput(serializers.ModelSerializer):
    monitor = MonitorRef(allow_null=True)
    acknowledged_by = UserRef(allow_null=True)
    acknowledged_by_key = ApiKeyRef(allow_null=True)
    resolved_by = UserRef(allow_null=True)
    resolved_by_key = ApiKeyRef(allow_null=True)

    class Meta:
        model = Incident
        fields = [
            "id",
            "monitor",
            "rule",
            "title",
            "description",
            "severity",
            "status",
            "cause",
            "occurrences",
            "suppressed",
            "suppressed_reason",
            "opened_at",
            "last_seen_at",
            "acknowledged_at",
            "acknowledged_by",
            "acknowledged_by_key",
            "resolved_at",
            "resolved_by",
            "resolved_by_key",
            "escalation_step",
            "next_escalation_at",
        ]


class IncidentDetailOutput(IncidentOutput):
    timeline = serializers.SerializerMethodField()
    timeline_next = serializers.SerializerMethodField()

    class Meta(IncidentOutput.Meta):
        fields = [*IncidentOutput.Meta.fields, "timeline", "timeline_next"]

    def get_timeline(self, incident: Incident) -> list[dict]:
        return EventOutput(self.context["timeline"], many=True).data

    def get_timeline_next(self, incident: Incident) -> str | None:
        return self.context.get("timeline_next")


class IncidentCreateInput(StrictSerializer):
    name = serializers.CharField(max_length=300)
    severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.ERROR)
    description = serializers.CharField(
        max_length=10_000, required=False, allow_blank=True, default=""
    )


class NoteInput(StrictSerializer):
    note = serializers.CharField(max_length=10_000, required=False, allow_blank=True, default="")


class TextInput(StrictSerializer):
    text = serializers.CharField(max_length=10_000)


class SnoozeInput(StrictSerializer):
    minutes = serializers.IntegerField(min_value=1, max_value=7 * 24 * 60, default=60)


class SnoozeOutput(serializers.Serializer):
    silence = serializers.UUIDField()
    until = serializers.DateTimeField()


# --- Alert rules ------------------------------------------------------------------------------


class AlertRuleOutput(serializers.ModelSerializer):
    threshold_meaning = serializers.SerializerMethodField()

    class Meta:
        model = AlertRule
        fields = [
            "id",
            "kind",
            "enabled",
            "threshold",
            "threshold_meaning",
            "window_seconds",
            "severity",
            "updated_at",
        ]

    def get_threshold_meaning(self, rule: AlertRule) -> str | None:
        spec = rules.THRESHOLDS.get(rule.kind)
        return spec[0] if spec else None


class AlertRuleInput(StrictSerializer):
    enabled = serializers.BooleanField(required=False)
    threshold = serializers.FloatField(required=False)
    window_seconds = serializers.IntegerField(required=False)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        kind = self.context["rule"].kind
        if "threshold" in attrs:
            spec = rules.THRESHOLDS.get(kind)
            if spec is None:
                raise serializers.ValidationError({"threshold": [f"{kind} takes no threshold."]})
            meaning, low, high = spec
            if not low <= attrs["threshold"] <= high:
                raise serializers.ValidationError(
                    {"threshold": [f"{meaning}: between {low:g} and {high:g}."]}
                )
        if "window_seconds" in attrs:
            bounds = rules.WINDOWS.get(kind)
            if bounds is None:
                raise serializers.ValidationError({"window_seconds": [f"{kind} takes no window."]})
            if not bounds[0] <= attrs["window_seconds"] <= bounds[1]:
                raise serializers.ValidationError(
                    {"window_seconds": [f"Between {bounds[0]} and {bounds[1]} seconds."]}
                )
            if kind == "low_uptime" and attrs["window_seconds"] % 3600:
                raise serializers.ValidationError(
                    {"window_seconds": ["Uptime is computed from hourly rollups: use whole hours."]}
                )
            if kind == "error_signature" and attrs["window_seconds"] % 60:
                raise serializers.ValidationError(
                    {"window_seconds": ["Lines are counted per minute: use whole minutes."]}
                )
        return attrs


# --- Dependencies -----------------------------------------------------------------------------


class DependencyOutput(serializers.ModelSerializer):
    monitor = MonitorRef()
    depends_on = MonitorRef()

    class Meta:
        model = MonitorDependency
        fields = ["id", "monitor", "depends_on", "created_at"]


class DependencyInput(StrictSerializer):
    monitor = serializers.UUIDField()
    depends_on = serializers.UUIDField()


# --- Maintenance windows ----------------------------------------------------------------------


class WindowOutput(serializers.ModelSerializer):
    monitors = serializers.SerializerMethodField()
    active = serializers.SerializerMethodField()
    next_start = serializers.SerializerMethodField()
    # Who made it: a user or an API key (both null: the system, e.g. a window from config).
    created_by = UserRef(allow_null=True, read_only=True)
    created_by_key = ApiKeyRef(allow_null=True, read_only=True)

    class Meta:
        model = MaintenanceWindow
        fields = [
            "id",
            "name",
            "kind",
            "recurrence",
            "starts_at",
            "ends_at",
            "cron",
            "weekdays",
            "start_time",
            "duration_minutes",
            "timezone",
            "all_monitors",
            "monitors",
            "tags",
            "incident",
            "active",
            "next_start",
            "created_by",
            "created_by_key",
            "created_at",
        ]

    def get_monitors(self, window: MaintenanceWindow) -> list[str]:
        return [str(m.pk) for m in window.monitors.all()]

    def get_active(self, window: MaintenanceWindow) -> bool:
        return window_math.is_active(window, self.context["now"])

    def get_next_start(self, window: MaintenanceWindow) -> str | None:
        nxt = window_math.next_start(window, self.context["now"])
        return nxt.isoformat() if nxt else None


class WindowInput(StrictSerializer):
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=WindowKind.choices, default=WindowKind.MAINTENANCE)
    recurrence = serializers.ChoiceField(choices=Recurrence.choices, default=Recurrence.ONCE)
    starts_at = serializers.DateTimeField(required=False, allow_null=True)
    ends_at = serializers.DateTimeField(required=False, allow_null=True)
    cron = serializers.CharField(max_length=100, required=False, allow_blank=True)
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6), required=False, max_length=7
    )
    start_time = serializers.TimeField(required=False, allow_null=True)
    duration_minutes = serializers.IntegerField(
        min_value=1, max_value=7 * 24 * 60, required=False, allow_null=True
    )
    timezone = serializers.CharField(max_length=64, required=False)
    all_monitors = serializers.BooleanField(required=False)
    monitors = serializers.ListField(child=serializers.UUIDField(), required=False, max_length=1000)
    tags = serializers.ListField(child=_TAG, required=False, max_length=20)

    def validate_timezone(self, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise serializers.ValidationError("Unknown time zone.") from exc
        return value

    def validate_cron(self, value: str) -> str:
        if value and not croniter.is_valid(value):
            raise serializers.ValidationError("Not a valid cron expression.")
        return value

    def validate_monitors(self, ids: list) -> list:
        from apps.monitors.models import Monitor

        org = self.context["org"]
        ids = list(dict.fromkeys(ids))
        found = set(Monitor.objects.for_org(org).filter(pk__in=ids).values_list("pk", flat=True))
        unknown = [str(i) for i in ids if i not in found]
        if unknown:
            raise serializers.ValidationError(f"No such monitor: {unknown[0]}.")
        return ids

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        current: MaintenanceWindow | None = self.context.get("window")

        def value(name: str, default: Any = None) -> Any:
            if name in attrs:
                return attrs[name]
            return getattr(current, name) if current is not None else default

        recurrence = value("recurrence", Recurrence.ONCE)
        starts, ends = value("starts_at"), value("ends_at")
        errors: dict[str, list[str]] = {}
        if recurrence == Recurrence.ONCE:
            if not starts:
                errors["starts_at"] = ["A one-off window needs a start."]
            if not ends:
                errors["ends_at"] = ["A one-off window needs an end."]
        else:
            if not value("duration_minutes"):
                errors["duration_minutes"] = ["A recurring window needs a duration."]
            if recurrence == Recurrence.CRON and not value("cron"):
                errors["cron"] = ["A cron window needs a cron expression."]
            if recurrence == Recurrence.WEEKLY:
                if not value("weekdays"):
                    errors["weekdays"] = ["Name at least one weekday (0 = Monday)."]
                if value("start_time") is None:
                    errors["start_time"] = ["A weekly window needs a start time."]
        if starts and ends and ends <= starts:
            errors["ends_at"] = ["Must be after starts_at."]
        scope = (
            value("all_monitors", False)
            or value("tags")
            or (
                attrs["monitors"]
                if "monitors" in attrs
                else (current is not None and current.monitors.exists())
            )
        )
        if not scope:
            errors["monitors"] = ["Name monitors or tags, or set all_monitors."]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs
