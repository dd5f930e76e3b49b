"""Request ids and one structured access-log line per request; request metrics by route;
`/api/` paths with or without their trailing slash; every `/api/` error in the one JSON shape,
and query strings that no filter could use refused before any view runs."""

from __future__ import annotations

import functools
import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve

from apps.core.dbfaults import database_fault, database_fault_body, log_database_fault
from apps.core.parsers import text_problem
from healthorch import metrics
from healthorch.logging import request_id_var

logger = logging.getLogger("healthorch.access")

# Accept a caller's id only if it is short and plain, so it cannot inject into log lines.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_PROBES = frozenset({"/live", "/ready", "/health", "/metrics"})


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            self._log(request, response.status_code, started)
            return response
        finally:
            request_id_var.reset(token)

    @staticmethod
    def _log(request: HttpRequest, status: int, started: float) -> None:
        level = logging.DEBUG if request.path in _PROBES and status < 500 else logging.INFO
        if not logger.isEnabledFor(level):
            return
        tenancy = getattr(request, "tenancy", None)
        logger.log(
            level,
            "%s %s %s",
            request.method,
            request.path,
            status,
            extra={
                "method": request.method,
                "path": request.path,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "org": str(tenancy.organization.slug) if tenancy else None,
            },
        )


class RequestMetricsMiddleware:
    """`http_requests_total` and `http_request_duration_seconds` by method, route and status.

    The route is the URL pattern that answered (`/api/v1/monitors/<uuid:pk>`), read after the
    response, so ids in paths and paths nobody serves (`unmatched`) never become series of
    their own. A regular-expression pattern (DRF's routers, the admin's app index) is written
    the way a `path()` one is: `/api/v1/monitors/<pk>/`. Any other method than the standard ones is counted as `other`, for the same
    reason. Placed first after django-prometheus' before-middleware, so the duration covers
    every middleware and the view."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = _route_label(match.route) if match is not None and match.route else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        labels = {"method": method, "route": route, "status": str(response.status_code)}
        metrics.http_requests_total.labels(**labels).inc()
        metrics.http_request_duration_seconds.labels(**labels).observe(
            time.perf_counter() - started
        )
        return response


_REGEX_GROUP = re.compile(r"\(\?P<(\w+)>(?:[^()\\]|\\.)*\)")


@functools.lru_cache(maxsize=1024)
def _route_label(route: str) -> str:
    return "/" + _REGEX_GROUP.sub(r"<\1>", route).replace("^", "").replace("$", "")


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ApiSlashMiddleware:
    """Every `/api/` path answers the same with or without its trailing slash.

    Django's APPEND_SLASH would redirect (and, for a POST, cannot: it raises), and a route
    declared without a slash would 404 with one. Here an `/api/` path that does not resolve is
    tried once with the slash added or removed, and if that resolves the request goes there,
    unchanged: no redirect, the method and body kept. Runs before CommonMiddleware.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path.startswith("/api/") and len(path) > len("/api/"):
            other = path[:-1] if path.endswith("/") else path + "/"
            urlconf = getattr(request, "urlconf", None)
            if not _resolves(path, urlconf) and _resolves(other, urlconf):
                request.path_info = other
                request.path = request.path.removesuffix(path) + other
        return self.get_response(request)


def _resolves(path: str, urlconf: str | None) -> bool:
    try:
        resolve(path, urlconf)
    except Resolver404:
        return False
    return True


# Titles of the error responses the API's own handler does not write (Django's 404 for an
# unknown path, its 500, a 405 or 413 raised outside a DRF view).
_TITLES = {
    400: ("Invalid input", "invalid"),
    404: ("Not found", "not_found"),
    405: ("Method not allowed", "method_not_allowed"),
    413: ("Payload too large", "payload_too_large"),
    415: ("Unsupported media type", "unsupported_media_type"),
    500: ("Server error", "server_error"),
}


class ApiErrorMiddleware:
    """Under `/api/`, every error is JSON with `error`, `detail` and `code`, and a query
    string that holds a NUL or an unpaired surrogate in a name or value is a 400.

    The query check stands here, once, rather than in each filter: every list reads its
    parameters into database queries, and PostgreSQL refuses a NUL in a text literal (a 500
    had the view run). Any other error page an `/api/` path would get (Django's HTML 404 or
    500, with or without DEBUG) is rewritten into the shape; a JSON answer passes unchanged.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith("/api/"):
            return self.get_response(request)
        refusal = _query_problem(request)
        if refusal:
            return JsonResponse(
                {"error": "Malformed request", "detail": refusal, "code": "parse_error"},
                status=400,
            )
        response = self.get_response(request)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith(
            "application/json"
        ):
            return _json_error(response)
        return response


def _query_problem(request: HttpRequest) -> str | None:
    try:
        parameters = request.GET.lists()
    except TooManyFieldsSent:
        return f"At most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} query parameters."
    for name, values in parameters:
        for text in (name, *values):
            problem = text_problem(text)
            if problem:
                return f"Query parameter {name!r}: {problem}"
    return None


def _json_error(response: HttpResponse) -> JsonResponse:
    status = response.status_code
    title, code = _TITLES.get(status, ("Error", "error"))
    detail = {
        404: "No such endpoint.",
        500: "Something went wrong; it has been logged.",
    }.get(status, f"{title}.")
    json = JsonResponse({"error": title, "detail": detail, "code": code}, status=status)
    for header in ("Allow", "Retry-After", "WWW-Authenticate", "X-Request-ID"):
        if header in response:
            json[header] = response[header]
    return json


class DatabaseFaultMiddleware:
    """A view outside DRF (the heartbeat ping, the console) that meets a locked, full or
    unreachable database answers 503 with a `Retry-After`, not a 500: JSON in the one error
    shape under `/api/`, one line of text elsewhere (a cron job's `curl` shows it). The fault
    is logged in one line without a traceback. DRF views answer the same through the API's
    exception handler (`apps.core.errors.exception_handler`). Other errors pass on untouched."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        fault = database_fault(exception)
        if fault is None:
            return None
        log_database_fault(fault, exception, f"{request.method} {request.path}")
        if request.path_info.startswith("/api/"):
            response: HttpResponse = JsonResponse(database_fault_body(fault), status=503)
        else:
            response = HttpResponse(
                fault.plain_text + "\n",
                status=503,
                content_type="text/plain; charset=utf-8",
            )
        response["Retry-After"] = str(fault.retry_after)
        response._has_been_logged = True  # the line above is the one; not Django's too
        return response
