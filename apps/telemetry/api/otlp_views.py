"""OTLP/HTTP receivers: `POST /v1/logs` and `POST /v1/metrics`, what any OpenTelemetry SDK or
Collector exports (`OTEL_EXPORTER_OTLP_ENDPOINT=https://<host>` with the API key in
`OTEL_EXPORTER_OTLP_HEADERS=x-api-key=hk_...`).

They pass the same tenancy gate as every endpoint (API key or token, scope, per-minute rate
limit), but answer in OTLP's terms rather than the API's error shape: a `google.rpc.Status` in
the encoding of the request. What a client may retry is a 429 (with `Retry-After`); what it
must not is a 400 (bad data), 401/403 (credentials), 413 or 415.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import set_rollback

from apps.core.errors import UpgradeRequired, exception_handler
from apps.plans.selectors import current_period
from apps.telemetry import otlp, services
from apps.tenants.gate.api import ORG_HEADER, TenantAPIView

_STATUS_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "integer", "description": "google.rpc.Code (informational)"},
        "message": {"type": "string"},
    },
}


def _schema(signal: str, summary: str) -> Any:
    export = f"Export{signal}ServiceRequest"
    return extend_schema(
        tags=["opentelemetry"],
        summary=summary,
        parameters=[ORG_HEADER],
        request={
            "application/x-protobuf": OpenApiTypes.BINARY,
            "application/json": {"type": "object", "description": f"OTLP/JSON {export}"},
        },
        responses={
            (200, "application/json"): OpenApiResponse(
                {"type": "object"},
                description=f"Export{signal}ServiceResponse; `partialSuccess` says how many "
                "records were rejected and why.",
                examples=[OpenApiExample("accepted", value={})],
            ),
            (200, "application/x-protobuf"): OpenApiResponse(OpenApiTypes.BINARY),
            **{
                (code, media): OpenApiResponse(
                    _STATUS_SCHEMA if media == "application/json" else OpenApiTypes.BINARY,
                    description=description,
                )
                for code, description in {
                    400: "Bad data (do not retry): google.rpc.Status.",
                    401: "Missing or invalid API key.",
                    402: "The plan does not include this signal.",
                    403: "The key cannot write.",
                    404: "Organization not found.",
                    413: "Body too large.",
                    415: "Unsupported Content-Type or Content-Encoding.",
                    429: "Over the plan's rate or monthly limit: retry after Retry-After.",
                }.items()
                for media in ("application/json", "application/x-protobuf")
            },
        },
    )


class _OtlpView(TenantAPIView):
    parser_classes: list = []  # the body is read raw and decoded by opentelemetry-proto
    encoding = otlp.PROTOBUF

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # The answer's encoding follows the request's Content-Type (OTLP), never `Accept`.
        return JSONRenderer(), "application/json"

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        self.encoding = otlp.encoding_of(request.content_type or "") or otlp.PROTOBUF
        super().initial(request, *args, **kwargs)

    def body(self, request: Request) -> bytes:
        raw = request._request.body
        if not raw and not request.content_type:
            # Not an exporter's request (they always name the encoding): bad data, not a 415.
            # An empty body with a Content-Type is an empty export: a success (OTLP/HTTP).
            raise otlp.OtlpError(
                400, "Send an export request as application/x-protobuf or application/json."
            )
        if otlp.encoding_of(request.content_type or "") is None:
            raise otlp.OtlpError(
                415, "Content-Type must be application/x-protobuf or application/json."
            )
        return otlp.decompress(raw, request.headers.get("Content-Encoding", ""))

    def receive(
        self,
        request: Request,
        parse: Callable[[bytes, str], Any],
        ingest: Callable[..., otlp.Decoded],
        respond: Callable[[otlp.Decoded], Any],
    ) -> HttpResponse:
        """One export: the body parsed as the signal's request, stored for the organization,
        answered with the signal's response in the request's encoding."""
        decoded = ingest(org=self.organization, request=parse(self.body(request), self.encoding))
        message = respond(decoded)
        return HttpResponse(otlp.encode(message, self.encoding), content_type=self.encoding)

    def handle_exception(self, exc: Exception) -> HttpResponse:
        headers: dict[str, str] = {}
        if isinstance(exc, otlp.OtlpError):
            code, text = exc.status, exc.message
        elif isinstance(exc, UpgradeRequired) and exc.limit is not None:
            # A monthly limit: retryable once the period turns (the plan may change sooner).
            _, end = current_period()
            code, text = status.HTTP_429_TOO_MANY_REQUESTS, str(exc)
            headers["Retry-After"] = str(_seconds_until(end))
        else:
            response = exception_handler(exc, {"view": self})
            if response is None:
                raise exc
            code = response.status_code
            text = response.data.get("detail") or response.data.get("error") or str(exc)
            for name in ("Retry-After", "WWW-Authenticate"):
                if name in response:
                    headers[name] = response[name]
            if isinstance(exc, exceptions.Throttled) and exc.wait:
                headers["Retry-After"] = str(int(exc.wait))
        set_rollback()
        response = HttpResponse(
            otlp.status_body(code, str(text), self.encoding),
            status=code,
            content_type=self.encoding,
        )
        for name, value in headers.items():
            response[name] = value
        return response


def _seconds_until(end: Any) -> int:
    boundary = datetime(end.year, end.month, end.day, tzinfo=UTC)  # periods are UTC months
    return max(1, int((boundary - timezone.now()).total_seconds()))


class OtlpLogsView(_OtlpView):
    @_schema("Logs", "OTLP/HTTP logs receiver (protobuf or JSON, gzip)")
    def post(self, request: Request) -> HttpResponse:
        return self.receive(request, otlp.parse_logs, services.otlp_logs_ingest, otlp.logs_response)


class OtlpMetricsView(_OtlpView):
    @_schema("Metrics", "OTLP/HTTP metrics receiver (protobuf or JSON, gzip)")
    def post(self, request: Request) -> HttpResponse:
        return self.receive(
            request, otlp.parse_metrics, services.otlp_metrics_ingest, otlp.metrics_response
        )
