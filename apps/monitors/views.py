"""The public ping endpoint for heartbeat monitors: no authentication, the UUID is the secret.

Kept out of DRF on purpose: it is the hottest endpoint (every cron job of every customer) and
needs none of DRF's negotiation. Answers are plain text, like curl-in-crontab users expect.
"""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.exceptions import Throttled

from apps.monitors.heartbeats import MAX_BODY_BYTES, ping_record
from apps.monitors.models import PingKind
from apps.plans.metering import check_rate

PINGS_PER_MINUTE_PER_MONITOR = 120


def _text(body: str, status: int = 200) -> HttpResponse:
    return HttpResponse(body + "\n", status=status, content_type="text/plain; charset=utf-8")


@csrf_exempt
def ping(request: HttpRequest, token: uuid.UUID, action: str = "") -> HttpResponse:
    if request.method not in ("GET", "POST", "HEAD"):
        return _text("method not allowed", 405)
    if action in ("", "success"):
        kind, exit_code = PingKind.SUCCESS, None
    elif action == "start":
        kind, exit_code = PingKind.START, None
    elif action == "fail":
        kind, exit_code = PingKind.FAIL, None
    elif action.isdigit() and int(action) <= 255:
        kind, exit_code = PingKind.EXIT, int(action)
    else:
        return _text("not found", 404)
    try:
        check_rate(ident=f"ping:{token}", per_minute=PINGS_PER_MINUTE_PER_MONITOR)
    except Throttled as exc:
        response = _text("rate limited", 429)
        response["Retry-After"] = str(int(exc.wait or 60))
        return response
    ping = ping_record(
        token=token,
        kind=kind,
        exit_code=exit_code,
        body=request.body[:MAX_BODY_BYTES] if request.method == "POST" else b"",
        remote_addr=request.META.get("REMOTE_ADDR"),
        user_agent=request.headers.get("User-Agent", ""),
    )
    if ping is None:
        return _text("not found", 404)
    return _text("OK")
