"""Request ids and one structured access-log line per request; request metrics by route;
`/api/` paths with or without their trailing slash."""

from __future__ import annotations

import functools
import logging
import re
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

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
