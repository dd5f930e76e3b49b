"""Probes for load balancers and orchestrators, and JSON error pages for API paths."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

import healthorch
from apps.core.events import Seam

logger = logging.getLogger(__name__)

# What /health reports beyond this process: each listener answers {part: {"status": ...}}
# (the monitors app: the scheduler's backlog), connected in healthorch/wiring.py.
health_reports = Seam("core.health_reports")


@never_cache
@require_GET
def live(request: HttpRequest) -> JsonResponse:
    """The process answers. Nothing else is checked, so a slow database never restarts pods."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """The product as a whole: 200 when every part reports ok, otherwise 503 naming it.

    Unlike /ready, a stale scheduler fails this one: taking web pods out of a load balancer
    because beat stopped would add an API outage to a scheduling one, so /ready stays about
    this process's own dependencies and /health is what an outside monitor watches.
    """
    body: dict[str, object] = {"status": "ok", "version": healthorch.__version__}
    for report in health_reports.listeners:
        try:
            parts = report()
        except Exception as exc:  # a part that cannot tell (database down) is not ok
            parts = {
                getattr(report, "__name__", "part"): {
                    "status": "unknown",
                    "error": f"{type(exc).__name__}: {exc}"[:300],
                }
            }
        body.update(parts)
    healthy = all(part["status"] == "ok" for name, part in body.items() if isinstance(part, dict))
    if not healthy:
        body["status"] = "degraded"
    return JsonResponse(body, status=200 if healthy else 503)


def _check_database() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _check_broker() -> None:
    from healthorch.celery import app

    timeout = settings.READY_CHECK_TIMEOUT_SECONDS
    with app.connection_for_write() as conn:
        # One attempt, bounded: readiness must answer quickly, not retry for a minute.
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
        conn.default_channel  # noqa: B018  (opening a channel proves the broker answers)


_CHECKS: dict[str, Callable[[], None]] = {"database": _check_database, "broker": _check_broker}


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    """Database and broker reachable: 200. Otherwise 503 naming what failed."""
    report: dict[str, dict[str, object]] = {}
    healthy = True
    for name, check in _CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:  # any failure of a dependency means "not ready"
            healthy = False
            report[name] = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}
            logger.warning("readiness check failed", extra={"check": name, "error": str(exc)})
        else:
            report[name] = {"status": "ok"}
        report[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": report},
        status=200 if healthy else 503,
    )


def json_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return JsonResponse(
        {"error": "Not found", "detail": "No such endpoint.", "code": "not_found"}, status=404
    )


def json_server_error(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "error": "Server error",
            "detail": "Something went wrong; it has been logged.",
            "code": "server_error",
        },
        status=500,
    )
