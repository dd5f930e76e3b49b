"""`/ping/<uuid>` answered at the WSGI layer, before Django's request machinery.

The ping endpoint is unauthenticated (the uuid is the secret), takes no cookies, sessions,
CSRF or content negotiation, and answers two words of plain text. Django's handler around it
(ten middlewares, URL resolving, the request object, the per-request connection health check)
cost more CPU than the ping itself (benchmarks/pings.py). So `PingFastPath` wraps the Django
application: well-formed pings go straight to `apps.monitors.pings.ping_accept`, with the
headers the middleware would have added; everything else, and every case the fast path does
not own (another method, an unknown action, a bad Host, plain http when https is required),
goes to Django unchanged, so its answers stay the view's. The Django view
(apps.monitors.views.ping) remains the same endpoint for the test client and runserver.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import DatabaseError, connection
from django.http.request import split_domain_port, validate_host

from apps.core.dbfaults import database_fault, log_database_fault
from healthorch import metrics
from healthorch.logging import request_id_var

logger = logging.getLogger("healthorch.access")

_PING_PATH = re.compile(
    # The same uuid spelling Django's `uuid` path converter accepts (lowercase).
    r"^/ping/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"(?:/([a-z0-9]{1,16}))?$"
)
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# A persistent connection used this recently is not health-checked again (Django checks it
# before every request: one more round trip per ping); an idle one is, as Django would.
HEALTH_CHECK_IDLE_SECONDS = 5.0

StartResponse = Callable[..., object]


def _answer(action: str | None) -> tuple[str, int | None] | None:
    from apps.monitors.models import PingKind

    if action in (None, "", "success"):
        return PingKind.SUCCESS, None
    if action == "start":
        return PingKind.START, None
    if action == "fail":
        return PingKind.FAIL, None
    if action.isdigit() and int(action) <= 255:
        return PingKind.EXIT, int(action)
    return None


class PingFastPath:
    def __init__(self, application: Callable[[dict, StartResponse], Iterable[bytes]]) -> None:
        self.application = application
        # Per thread: Django's connection is per thread, and so is its last use (gunicorn's
        # gthread workers run one application object in several threads).
        self._local = threading.local()

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        match = _PING_PATH.match(environ.get("PATH_INFO", ""))
        method = environ.get("REQUEST_METHOD", "GET")
        if match is None or method not in ("GET", "POST", "HEAD"):
            return self.application(environ, start_response)
        secure = _is_secure(environ)
        if not _host_allowed(environ) or (settings.SECURE_SSL_REDIRECT and not secure):
            return self.application(environ, start_response)  # Django's 400 or redirect
        parsed = _answer(match.group(2))
        if parsed is None:
            return self.application(environ, start_response)  # the view's 404
        return self._ping(environ, start_response, match.group(1), method, secure, *parsed)

    def _ping(
        self,
        environ: dict,
        start_response: StartResponse,
        token: str,
        method: str,
        secure: bool,
        kind: str,
        exit_code: int | None,
    ) -> Iterable[bytes]:
        from apps.monitors.heartbeats import MAX_BODY_BYTES
        from apps.monitors.pings import ping_accept

        started = time.perf_counter()
        incoming = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        reset = request_id_var.set(request_id)
        try:
            body = b""
            if method == "POST":
                try:
                    length = int(environ.get("CONTENT_LENGTH") or 0)
                except ValueError:
                    length = 0
                if length > 0:
                    body = environ["wsgi.input"].read(min(length, MAX_BODY_BYTES))
            self._connection_ready()
            retry_after = None
            try:
                answer = ping_accept(
                    token=uuid.UUID(token),
                    kind=kind,
                    exit_code=exit_code,
                    body=body,
                    remote_addr=environ.get("REMOTE_ADDR"),
                    user_agent=environ.get("HTTP_USER_AGENT", ""),
                )
            except DatabaseError as exc:
                # A locked, full or unreachable database: the Django view's answer (503, one
                # log line, Retry-After: apps.core.middleware.DatabaseFaultMiddleware).
                fault = database_fault(exc)
                if fault is None:
                    logger.exception("ping failed", extra={"path": environ.get("PATH_INFO")})
                    status, text, outcome = 503, "try again", "error"
                else:
                    log_database_fault(fault, exc, f"{method} {environ.get('PATH_INFO')}")
                    status, text, outcome = 503, fault.plain_text, "error"
                    retry_after = str(fault.retry_after)
            else:
                self._local.last_used = time.monotonic()
                if not answer.found:
                    status, text, outcome = 404, "not found", "not_found"
                elif answer.limited:
                    status, text, outcome = 429, "rate limited", "limited"
                    retry_after = str(answer.retry_after)
                else:
                    status, text, outcome = 200, "OK", "recorded"
            metrics.heartbeat_pings_total.labels(answer=outcome).inc()
            payload = (text + "\n").encode()
            headers = [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(payload))),
                # What SecurityMiddleware and XFrameOptionsMiddleware add to every answer.
                ("X-Content-Type-Options", "nosniff"),
                ("Referrer-Policy", settings.SECURE_REFERRER_POLICY or "same-origin"),
                ("Cross-Origin-Opener-Policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY or ""),
                ("X-Frame-Options", settings.X_FRAME_OPTIONS),
                ("X-Request-ID", request_id),
            ]
            if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY is None:
                headers = [h for h in headers if h[0] != "Cross-Origin-Opener-Policy"]
            if secure and settings.SECURE_HSTS_SECONDS:
                headers.append(("Strict-Transport-Security", _hsts()))
            if retry_after is not None:
                headers.append(("Retry-After", retry_after))
            start_response(f"{status} {_REASONS[status]}", headers)
            self._log(method, environ.get("PATH_INFO", ""), status, started)
            return [b"" if method == "HEAD" else payload]
        finally:
            request_id_var.reset(reset)

    def _connection_ready(self) -> None:
        """Django's per-request connection housekeeping, minus the health check of a
        connection that just worked: obsolete, errored or long-idle connections are closed
        or checked exactly as Django's request_started handler does."""
        conn = connection
        if conn.connection is None or conn.in_atomic_block:
            # Nothing to keep up, or inside a transaction someone else owns (tests do this;
            # Django's test client disconnects its own request_started handler too).
            return
        if (
            conn.errors_occurred
            or (conn.close_at is not None and time.monotonic() >= conn.close_at)
            or time.monotonic() - getattr(self._local, "last_used", 0.0) > HEALTH_CHECK_IDLE_SECONDS
        ):
            conn.close_if_unusable_or_obsolete()

    @staticmethod
    def _log(method: str, path: str, status: int, started: float) -> None:
        if not logger.isEnabledFor(logging.INFO):
            return
        logger.info(
            "%s %s %s",
            method,
            path,
            status,
            extra={
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                "org": None,
            },
        )


def _host_allowed(environ: dict) -> bool:
    """Django's ALLOWED_HOSTS rule (it answers a bad Host with 400; so do we, through it)."""
    host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
    domain, _ = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    return bool(domain) and validate_host(domain, allowed)


def _is_secure(environ: dict) -> bool:
    header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if header is not None:
        return environ.get(header[0]) == header[1]
    return environ.get("wsgi.url_scheme") == "https"


def _hsts() -> str:
    value = f"max-age={settings.SECURE_HSTS_SECONDS}"
    if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
        value += "; includeSubDomains"
    if settings.SECURE_HSTS_PRELOAD:
        value += "; preload"
    return value


_REASONS = {200: "OK", 404: "Not Found", 429: "Too Many Requests", 503: "Service Unavailable"}
