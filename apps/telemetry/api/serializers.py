"""Input and output shapes of the telemetry endpoints."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from apps.monitors.selectors import METRIC_NAME, METRIC_SOURCE
from apps.telemetry.models import Level, LogLine
from apps.telemetry.selectors import MAX_POINTS

#: the series range when `since` is not given
DEFAULT_RANGE = timedelta(hours=24)
#: the number of points aimed at when `step` is not given
DEFAULT_POINTS = 300
MIN_STEP = 10


class LogLineInput(serializers.Serializer):
    # Documents one item of POST /api/v1/logs (validated by the service, naming the index).
    ts = serializers.DateTimeField(required=False, help_text="Defaults to the time received.")
    source = serializers.RegexField(METRIC_SOURCE, max_length=64)
    level = serializers.ChoiceField(Level.choices, default=Level.INFO)
    message = serializers.CharField(max_length=32_768)
    attributes = serializers.DictField(required=False, help_text="At most 8 KB as JSON.")


class LogBatchInput(serializers.Serializer):
    logs = LogLineInput(many=True, help_text="1 to 1,000 lines; at most 1 MB in all.")


class LogLineOutput(serializers.ModelSerializer):
    class Meta:
        model = LogLine
        fields = ["id", "ts", "source", "level", "message", "attributes", "trace_id", "span_id"]


class SeriesQuery(serializers.Serializer):
    source = serializers.RegexField(METRIC_SOURCE, max_length=64)
    name = serializers.RegexField(METRIC_NAME, max_length=64)
    since = serializers.DateTimeField(required=False, help_text="Default: 24 hours before until.")
    until = serializers.DateTimeField(required=False, help_text="Default: now.")
    step = serializers.IntegerField(
        required=False,
        min_value=MIN_STEP,
        max_value=31 * 86400,
        help_text=f"Seconds per point (default: the range over {DEFAULT_POINTS}, at least "
        f"{MIN_STEP}); at most {MAX_POINTS} points per answer.",
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        until = data.get("until") or timezone.now()
        since = data.get("since") or until - DEFAULT_RANGE
        if since >= until:
            raise serializers.ValidationError({"since": ["Must be before until."]})
        seconds = (until - since).total_seconds()
        step = data.get("step") or max(MIN_STEP, int(-(-seconds // DEFAULT_POINTS)))
        if seconds / step > MAX_POINTS:
            raise serializers.ValidationError(
                {
                    "step": [
                        f"At most {MAX_POINTS} points: use a step of {int(-(-seconds // MAX_POINTS))} s or more."
                    ]
                }
            )
        return {**data, "since": since, "until": until, "step": step}


class PointOutput(serializers.Serializer):
    t = serializers.DateTimeField(help_text="Start of the step.")
    count = serializers.IntegerField()
    avg = serializers.FloatField()
    min = serializers.FloatField()
    max = serializers.FloatField()
    p95 = serializers.FloatField(help_text="Nearest-rank 95th percentile of the step.")


class SeriesOutput(serializers.Serializer):
    source = serializers.CharField()
    name = serializers.CharField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    step = serializers.IntegerField()
    points = PointOutput(many=True)


class SourcesQuery(serializers.Serializer):
    since = serializers.DateTimeField(required=False, help_text="Only metrics sent since then.")


class MetricNameOutput(serializers.Serializer):
    name = serializers.CharField()
    last_seen = serializers.DateTimeField()


class SourceOutput(serializers.Serializer):
    source = serializers.CharField()
    last_seen = serializers.DateTimeField()
    metrics = MetricNameOutput(many=True)
