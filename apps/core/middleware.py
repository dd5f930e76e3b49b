"""Request ids and one structured access-log line per request; `/api/` paths with or without
their trailing slash."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

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
