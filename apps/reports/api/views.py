"""Report endpoints: SLA (JSON, CSV, PDF), summary, error analysis, insights, settings and the
caller's scheduled-report subscription."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.http import Http404, HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, renderers, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.schema import errors
from apps.monitors.models import Monitor
from apps.plans.models import Feature
from apps.plans.services import require_feature
from apps.reports import exports, insights, selectors, services
from apps.reports.api.serializers import (
    ErrorsQuery,
    ReportSettingsSerializer,
    SlaQuery,
    errors_cursor,
)
from apps.reports.periods import KINDS, PeriodError, parse_period
from apps.tenants.gate.api import ORG_HEADER, TenantAPIView
from apps.tenants.selectors import Access


class _Passthrough(renderers.BaseRenderer):
    """Lets `?format=csv|pdf` through DRF's content negotiation; the view answers with the
    finished document itself, so this never renders anything."""

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context=None):
        return data


class CSVRenderer(_Passthrough):
    media_type = "text/csv"
    format = "csv"


class PDFRenderer(_Passthrough):
    media_type = "application/pdf"
    format = "pdf"


class _JSONErrors:
    """Errors are JSON whatever format was asked for."""

    renderer_classes = [renderers.JSONRenderer, CSVRenderer, PDFRenderer]

    def perform_content_negotiation(self, request: Request, force: bool = False):
        try:
            return super().perform_content_negotiation(request, force)
        except (exceptions.NotFound, Http404):
            request.accepted_renderer = renderers.JSONRenderer()
            request.accepted_media_type = "application/json"
            raise serializers.ValidationError({"format": ["Use json, csv or pdf."]}) from None

    def finalize_response(self, request: Request, response, *args, **kwargs):
        if isinstance(response, Response) and response.status_code >= 400:
            request.accepted_renderer = renderers.JSONRenderer()
            request.accepted_media_type = "application/json"
        return super().finalize_response(request, response, *args, **kwargs)


def _monitor(org, monitor_id) -> Monitor:
    found = Monitor.objects.for_org(org).filter(pk=monitor_id).first()
    if found is None:
        raise Http404
    return found


def _report_query(view: TenantAPIView, query_class: type[serializers.Serializer]) -> dict:
    """A report's query parameters, validated, once the plan is known to have SLA reports
    (402 before any 400)."""
    require_feature(org=view.organization, feature=Feature.SLA_REPORTS)
    query = query_class(data=view.request.query_params)
    query.is_valid(raise_exception=True)
    return query.validated_data


_SLA_PARAMS = [
    OpenApiParameter("period", str, enum=list(KINDS)),
    OpenApiParameter("start", str, description="a date, YYYY-MM, or ISO date-time"),
    OpenApiParameter("end", str, description="custom periods; a date includes that day"),
    OpenApiParameter("monitor", OpenApiTypes.UUID),
    OpenApiParameter("tag", str),
    OpenApiParameter("format", str, enum=["json", "csv", "pdf"]),
]


class SlaReportView(_JSONErrors, TenantAPIView):
    @extend_schema(
        tags=["reports"],
        parameters=[ORG_HEADER, *_SLA_PARAMS],
        responses={200: OpenApiTypes.OBJECT, **errors(400, 401, 402, 403, 404, 429)},
        summary="SLA report of the organization, a tag or a monitor (JSON, CSV or PDF)",
    )
    def get(self, request: Request) -> Any:
        org = self.organization
        q = _report_query(self, SlaQuery)
        settings = selectors.report_settings_for(org)
        try:
            period = parse_period(
                kind=q["period"],
                start=q.get("start"),
                end=q.get("end"),
                tz=selectors.tz_of(settings),
            )
        except PeriodError as exc:
            raise serializers.ValidationError({exc.field: [exc.message]}) from None
        monitor = _monitor(org, q["monitor"]) if "monitor" in q else None
        monitors = selectors.report_monitors(org=org, monitor=monitor, tag=q.get("tag"))
        if "tag" in q and not monitors:
            raise Http404  # a tag no monitor of this organization carries
        scope = (
            {"kind": "monitor", "monitor": str(monitor.pk)}
            if monitor
            else {"kind": "tag", "tag": q["tag"]}
            if "tag" in q
            else {"kind": "organization"}
        )
        report = selectors.sla_report(
            org=org, period=period, monitors=monitors, settings=settings, scope=scope
        )
        name = f"sla-{org.slug}-{period.start.date().isoformat()}"
        if q["format"] == "csv":
            response = HttpResponse(exports.report_csv(report), content_type="text/csv")
            response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
            return response
        if q["format"] == "pdf":
            response = HttpResponse(exports.report_pdf(report), content_type="application/pdf")
            response["Content-Disposition"] = f'inline; filename="{name}.pdf"'
            return response
        return Response(report)


class SummaryView(TenantAPIView):
    @extend_schema(
        tags=["reports"],
        parameters=[ORG_HEADER],
        responses={200: OpenApiTypes.OBJECT, **errors(401, 403, 429)},
        summary="Monitor totals: healthy, unhealthy, critical unhealthy, health %, open incidents",
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.summary(org=self.organization))


class ErrorsView(TenantAPIView):
    @extend_schema(
        tags=["reports"],
        parameters=[
            ORG_HEADER,
            OpenApiParameter(
                "monitor",
                OpenApiTypes.UUID,
                description="checks of this monitor; logs of the source named as its slug",
            ),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description="default: 24 h ago"),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description="default: now"),
            OpenApiParameter(
                "kind", str, enum=["checks", "logs"], description="default: both parts"
            ),
            OpenApiParameter("source", str, description="logs of this source only"),
            OpenApiParameter("limit", int, description="signatures per page, 1-200 (50)"),
            OpenApiParameter("cursor", str, description="`signatures_next` of the last page"),
        ],
        responses={200: OpenApiTypes.OBJECT, **errors(400, 401, 402, 403, 404, 429)},
        summary="Failures grouped by monitor, error class and message, and error log "
        "signatures, with first/last seen and trends",
    )
    def get(self, request: Request) -> Response:
        org = self.organization
        q = _report_query(self, ErrorsQuery)
        now = timezone.now()
        until = min(q.get("until") or now, now)
        since = q.get("since") or until - timedelta(hours=24)
        if until - since > timedelta(days=90):
            raise serializers.ValidationError({"since": ["At most 90 days at once."]})
        if since >= until:
            raise serializers.ValidationError({"since": ["Must be before until (and now)."]})
        monitor = _monitor(org, q["monitor"]) if "monitor" in q else None
        body: dict[str, Any] = {"since": since.isoformat(), "until": until.isoformat()}
        if q.get("kind") != "logs":
            body["groups"] = selectors.error_groups(
                org=org, since=since, until=until, monitor=monitor
            )
        if q.get("kind") != "checks":
            offset = q.get("cursor", 0)
            signatures, more = selectors.error_signatures(
                org=org,
                since=since,
                until=until,
                now=now,
                source=q.get("source") or (monitor.slug if monitor else None),
                offset=offset,
                limit=q["limit"],
            )
            body["signatures"] = signatures
            body["signatures_next"] = errors_cursor(offset + q["limit"]) if more else None
        return Response(body)


class InsightsView(TenantAPIView):
    @extend_schema(
        tags=["reports"],
        parameters=[ORG_HEADER],
        responses={200: OpenApiTypes.OBJECT, **errors(401, 403, 404, 429)},
        summary="30-day trends, a scale_up/scale_down/maintain recommendation and forecasts",
    )
    def get(self, request: Request, monitor_id) -> Response:
        monitor = _monitor(self.organization, monitor_id)
        monitor.organization = self.organization  # plan already loaded by the tenancy gate
        return Response(insights.monitor_insights(monitor=monitor))


class MonitorUptimeView(TenantAPIView):
    """A monitor's uptime, served under the monitor's URL from the SLA engine, so this endpoint
    and the reports never disagree."""

    @extend_schema(
        tags=["monitors"],
        parameters=[ORG_HEADER],
        responses={
            200: inline_serializer(
                "Uptime",
                {
                    name: inline_serializer(
                        f"Uptime{name}",
                        {
                            "uptime_pct": serializers.FloatField(allow_null=True),
                            "checks": serializers.IntegerField(),
                            "p50_ms": serializers.FloatField(allow_null=True),
                            "p95_ms": serializers.FloatField(allow_null=True),
                            "p99_ms": serializers.FloatField(allow_null=True),
                        },
                    )
                    for name in ("24h", "7d", "30d", "90d")
                },
            ),
            **errors(401, 403, 404, 429),
        },
        summary="Uptime and latency percentiles over 24 h, 7 d, 30 d and 90 d (the SLA engine, from rollups)",
    )
    def get(self, request: Request, monitor_id) -> Response:
        monitor = _monitor(self.organization, monitor_id)
        monitor.organization = self.organization  # loaded with its plan by the tenancy gate
        return Response(selectors.monitor_uptime(monitor=monitor))


class ReportSettingsView(TenantAPIView):
    write_access = Access.MANAGE

    @extend_schema(
        tags=["reports"],
        parameters=[ORG_HEADER],
        responses={200: ReportSettingsSerializer, **errors(401, 403, 429)},
        summary="How the SLA is counted and when the report is mailed",
    )
    def get(self, request: Request) -> Response:
        return Response(
            ReportSettingsSerializer(selectors.report_settings_for(self.organization)).data
        )

    @extend_schema(
        tags=["reports"],
        parameters=[ORG_HEADER],
        request=ReportSettingsSerializer,
        responses={200: ReportSettingsSerializer, **errors(400, 401, 403, 429)},
    )
    def patch(self, request: Request) -> Response:
        data = ReportSettingsSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        row = services.report_settings_update(org=self.organization, data=dict(data.validated_data))
        return Response(ReportSettingsSerializer(row).data)


class SubscriptionView(TenantAPIView):
    """The signed-in member's own subscription to the scheduled report (owners receive it)."""

    write_access = Access.READ  # anyone may opt themselves out

    def _user(self, request: Request):
        if self.tenancy.user is None:
            raise serializers.ValidationError(
                {"detail": ["Sign in as a member: an API key has no mailbox."]}
            )
        return self.tenancy.user

    def _state(self, opted_out: bool) -> Response:
        return Response({"subscribed": not opted_out})

    @extend_schema(tags=["reports"], parameters=[ORG_HEADER], responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        from apps.reports.models import ReportOptOut

        user = self._user(request)
        return self._state(
            ReportOptOut.objects.for_org(self.organization).filter(user=user).exists()
        )

    @extend_schema(
        tags=["reports"],
        parameters=[ORG_HEADER],
        request=None,
        responses={200: OpenApiTypes.OBJECT},
    )
    def put(self, request: Request) -> Response:
        user = self._user(request)
        return self._state(
            services.report_opt_out(org=self.organization, user=user, opted_out=False)
        )

    @extend_schema(tags=["reports"], parameters=[ORG_HEADER], responses={200: OpenApiTypes.OBJECT})
    def delete(self, request: Request) -> Response:
        user = self._user(request)
        return self._state(
            services.report_opt_out(org=self.organization, user=user, opted_out=True)
        )
