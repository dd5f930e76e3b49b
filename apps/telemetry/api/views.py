"""Telemetry endpoints under /api/v1/: log ingestion, log list and live tail, metric series and
sources. (The OTLP endpoints, /v1/logs and /v1/metrics, are in `otlp_views`.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.http import StreamingHttpResponse
from django_filters.utils import translate_validation
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.errors import PayloadTooLarge
from apps.core.lists import cursor, cursor_page, filter_parameters
from apps.core.schema import AUTHENTICATED, READ, errors
from apps.telemetry import selectors, services
from apps.telemetry.api.filters import LogFilter, TailFilter
from apps.telemetry.api.serializers import (
    LogBatchInput,
    LogLineOutput,
    SeriesOutput,
    SeriesQuery,
    SourceOutput,
    SourcesQuery,
)
from apps.telemetry.models import LogLine
from apps.tenants.gate.api import ORG_HEADER, TenantAPIView

LogCursor = cursor("-ts", "-id", page_size=100, max_page_size=1000)


def _filters(filterset_class: Any, request: Request) -> dict[str, Any]:
    filterset = filterset_class(data=request.query_params, queryset=LogLine.objects.none())
    if not filterset.is_valid():
        raise translate_validation(filterset.errors)
    return selectors.log_filters(filterset.form.cleaned_data)


class LogsView(TenantAPIView):
    pagination_class = LogCursor

    @extend_schema(
        tags=["logs"],
        parameters=[ORG_HEADER, *filter_parameters(LogFilter)],
        responses={200: LogLineOutput(many=True), **errors(400, *READ)},
        summary="Log lines, newest first (cursor-paginated), by source, level, words and time",
    )
    def get(self, request: Request) -> Response:
        lines = selectors.log_list(org=self.organization, **_filters(LogFilter, request))
        return cursor_page(self, lines, LogCursor, LogLineOutput)

    @extend_schema(
        tags=["logs"],
        parameters=[ORG_HEADER],
        request=LogBatchInput,
        responses={
            202: inline_serializer("LogsAccepted", {"accepted": serializers.IntegerField()}),
            **errors(*AUTHENTICATED, 402, 413, 429),
        },
        summary='Ingest {"logs": [...]} (up to 1,000 lines, 1 MB); all or nothing',
    )
    def post(self, request: Request) -> Response:
        if len(request.body) > services.MAX_BODY_BYTES:
            raise PayloadTooLarge(f"A log batch may be at most {services.MAX_BODY_BYTES} bytes.")
        accepted = services.logs_ingest(org=self.organization, payload=request.data)
        return Response({"accepted": accepted}, status=status.HTTP_202_ACCEPTED)


class LogTailView(TenantAPIView):
    @extend_schema(
        tags=["logs"],
        parameters=[
            ORG_HEADER,
            *filter_parameters(TailFilter),
            OpenApiParameter(
                "after",
                int,
                description="Send lines with an id past this one (default: only new lines). "
                "`Last-Event-ID` does the same on a reconnect.",
            ),
            OpenApiParameter(
                "seconds",
                int,
                description="How long the stream stays open (default and maximum: the server's "
                "TELEMETRY_TAIL_SECONDS); reconnect to go on.",
            ),
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "event": {"type": "string", "enum": ["log", "end"]},
                        "data": {"type": "string"},
                    },
                },
                description="Server-sent events: `log` (one line as JSON, its id as the event "
                "id), then `end` when the time is up.",
            ),
            **errors(400, *READ),
        },
        summary="Live tail of log lines (server-sent events, time-limited)",
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        filters = _filters(TailFilter, request)
        after = _int_param(request, "after", request.headers.get("Last-Event-ID"))
        limit = settings.TELEMETRY_TAIL_SECONDS
        seconds = _int_param(request, "seconds", None)
        seconds = limit if seconds is None else min(max(seconds, 1), limit)
        org = self.organization
        if after is None:
            after = selectors.log_latest_id(org=org)
        lines = selectors.log_list(org=org, **filters)
        response = StreamingHttpResponse(
            _tail(lines, after=after, seconds=seconds), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        response["X-Accel-Buffering"] = "no"  # a proxy must pass each event on at once
        return response


def _int_param(request: Request, name: str, fallback: str | None) -> int | None:
    raw = request.query_params.get(name, fallback)
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise serializers.ValidationError({name: ["A whole number."]})
    return int(raw)


TAIL_BATCH = 500


def _tail(lines: Any, *, after: int, seconds: int) -> Iterator[str]:
    return selectors.log_tail_events(
        lines,
        after=after,
        seconds=seconds,
        batch_size=TAIL_BATCH,
        data=lambda line: json.dumps(LogLineOutput(line).data, separators=(",", ":")),
    )


class MetricSeriesView(TenantAPIView):
    @extend_schema(
        tags=["metrics"],
        parameters=[ORG_HEADER, SeriesQuery],
        responses={200: SeriesOutput, **errors(400, *READ)},
        summary="One metric series, downsampled per step (avg, min, max, p95)",
    )
    def get(self, request: Request) -> Response:
        query = SeriesQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        points = selectors.metric_series(
            org=self.organization,
            source=q["source"],
            name=q["name"],
            since=q["since"],
            until=q["until"],
            step=q["step"],
        )
        body = {**{k: q[k] for k in ("source", "name", "since", "until", "step")}}
        body["points"] = [p.__dict__ for p in points]
        return Response(SeriesOutput(body).data)


class MetricSourcesView(TenantAPIView):
    @extend_schema(
        tags=["metrics"],
        parameters=[ORG_HEADER, SourcesQuery],
        responses={200: SourceOutput(many=True), **errors(400, *READ)},
        summary="Sources that sent metric samples, with their metric names",
    )
    def get(self, request: Request) -> Response:
        query = SourcesQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        sources = selectors.metric_sources(
            org=self.organization, since=query.validated_data.get("since")
        )
        return Response(SourceOutput(sources, many=True).data)
