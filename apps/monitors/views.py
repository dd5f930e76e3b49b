"""The public ping endpoint for heartbeat monitors: no authentication, the UUID is the secret.

Kept out of DRF on purpose: it is the hottest endpoint (every cron job of every customer) and
needs none of DRF's negotiation. Answers are plain text, like curl-in-crontab users expect.
"""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from apps.monitors.heartbeats import MAX_BODY_BYTES
from apps.monitors.models import PingKind
from apps.monitors.pings import ping_accept


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
    # Rate-limited per monitor inside the ping's own statement (apps.monitors.pings).
    answer = ping_accept(
        token=token,
        kind=kind,
        exit_code=exit_code,
        body=request.body[:MAX_BODY_BYTES] if request.method == "POST" else b"",
        remote_addr=request.META.get("REMOTE_ADDR"),
        user_agent=request.headers.get("User-Agent", ""),
    )
    if not answer.found:
        return _text("not found", 404)
    if answer.limited:
        response = _text("rate limited", 429)
        response["Retry-After"] = str(answer.retry_after)
        return response
    return _text("OK")
