"""One error shape for the whole API.

Every error body is a JSON object with at least ``error`` (a short title). Validation errors add
``fields`` ({field: [messages]}); other errors add ``detail`` (a sentence). A service refusing
input field by field raises FieldErrors, answered exactly as a serializer's ValidationError.
Plan limits answer 402 with exactly ``{"error": "Upgrade Required", "feature": ...,
"current_plan": ...}`` (plus optional ``limit`` and ``used``), raised as UpgradeRequired from
any service.
A database that is locked, full or unreachable answers 503 with ``code`` ``database_busy``,
``storage_full``, ``storage_error`` or ``database_unavailable`` and a ``Retry-After``
(`apps.core.dbfaults`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error

from apps.core.dbfaults import database_fault, database_fault_body, log_database_fault

logger = logging.getLogger(__name__)


class ServiceError(Exception):
    """A business rule refused the request. Services raise it; the API maps it to a status."""

    status_code = status.HTTP_400_BAD_REQUEST
    title = "Request refused"

    def __init__(self, detail: str, *, code: str = "refused", field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code
        self.field = field


class Conflict(ServiceError):
    status_code = status.HTTP_409_CONFLICT
    title = "Conflict"


class FieldErrors(ServiceError):
    """Input a service refuses field by field: {field: [messages]}, nested for a plugin's config
    ({"config": {"url": [...]}}). The API answers it as it answers a serializer's validation
    error, 400 ``{"error": "Invalid input", "fields": {...}}``. `detail` is the sentence the
    console showed for such a ValidationError ("field: message; other: message")."""

    def __init__(self, fields: dict[str, Any]) -> None:
        normalized = exceptions.ValidationError(fields).detail
        super().__init__(
            "; ".join(
                f"{key}: {' '.join(map(str, _as_list(value)))}" for key, value in normalized.items()
            ),
            code="invalid",
        )
        self.fields = fields


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@contextmanager
def invalid_under(field: str) -> Iterator[None]:
    """Run a plugin's config validation (a DRF serializer) inside a service: its errors come out
    as FieldErrors nested under `field`, e.g. {"config": {"url": ["..."]}}."""
    try:
        yield
    except exceptions.ValidationError as exc:
        raise FieldErrors({field: exc.detail}) from exc


class UpgradeRequired(Exception):
    """A locked feature or an exhausted plan limit. Always HTTP 402."""

    def __init__(
        self, *, feature: str, current_plan: str, limit: int | None = None, used: int | None = None
    ) -> None:
        super().__init__(f"{feature} requires a plan upgrade (current plan {current_plan})")
        self.feature = feature
        self.current_plan = current_plan
        self.limit = limit
        self.used = used

    def as_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "error": "Upgrade Required",
            "feature": self.feature,
            "current_plan": self.current_plan,
        }
        if self.limit is not None:
            body["limit"] = self.limit
        if self.used is not None:
            body["used"] = self.used
        return body


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


_TITLES = {
    400: "Invalid input",
    401: "Authentication required",
    403: "Permission denied",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    413: "Payload too large",
    415: "Unsupported media type",
    429: "Too many requests",
}


def _flatten(detail: Any) -> str:
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    if isinstance(detail, dict):
        return " ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    return str(detail)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF exception handler producing the one error shape; unknown exceptions stay 500s."""
    # Imported here: rest_framework.views imports the authentication classes, which import
    # services, which import this module.
    from rest_framework.views import set_rollback

    headers: dict[str, str] = {}
    fault = database_fault(exc)
    if fault is not None:
        request = context.get("request")
        log_database_fault(
            fault, exc, f"{request.method} {request.path}" if request is not None else "the API"
        )
        set_rollback()
        response = Response(
            database_fault_body(fault),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(fault.retry_after)},
        )
        response._has_been_logged = True  # the line above is the one; not Django's too
        return response
    if isinstance(exc, UpgradeRequired):
        set_rollback()
        return Response(exc.as_body(), status=status.HTTP_402_PAYMENT_REQUIRED)
    if isinstance(exc, FieldErrors):
        exc = exceptions.ValidationError(exc.fields)  # the same body a serializer's would have
    elif isinstance(exc, ServiceError):
        set_rollback()
        body: dict[str, Any] = {"error": exc.title, "detail": exc.detail, "code": exc.code}
        if exc.field:
            body["fields"] = {exc.field: [exc.detail]}
        return Response(body, status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(
            f"The request body may be at most {settings.API_MAX_BODY_BYTES} bytes."
        )
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None

    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))
    set_rollback()

    code = exc.status_code
    title = _TITLES.get(code, "Error")
    if isinstance(exc, exceptions.ParseError):
        title = "Malformed request"
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            non_field = detail.get("non_field_errors")
            named = ", ".join(str(name) for name in detail if name != "non_field_errors")
            sentence = _flatten(non_field) if non_field else f"Check these fields: {named}."
            body = {"error": title, "fields": detail, "detail": sentence, "code": _code(exc)}
        else:
            body = {"error": title, "detail": _flatten(detail), "code": _code(exc)}
        return Response(body, status=code, headers=headers)
    return Response(
        {"error": title, "detail": _flatten(exc.detail), "code": _code(exc)},
        status=code,
        headers=headers,
    )


def _code(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    return codes if isinstance(codes, str) else exc.default_code
