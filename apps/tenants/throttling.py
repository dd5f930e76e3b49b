"""Login brute-force protection: only failures count, per (client, email) and per client.

A fixed window in the cache (Redis in production) with atomic add/incr, so counts are shared by
every web process. Success clears the (client, email) bucket so a user who finally types the
right password is not punished later.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from apps.core.cache import CacheUnavailable


def _client(request: Request) -> str:
    return BaseThrottle().get_ident(request)


def _buckets(request: Request, email: str) -> list[tuple[str, int]]:
    window = settings.LOGIN_FAILURE_WINDOW_SECONDS
    slot = int(time.time() // window)
    client = _client(request)
    return [
        (f"login-fail:{slot}:{client}:{email.lower()}", settings.LOGIN_FAILURES_PER_EMAIL),
        (f"login-fail:{slot}:{client}", settings.LOGIN_FAILURES_PER_CLIENT),
    ]


def retry_after(request: Request, email: str) -> int | None:
    """Seconds to wait if this client (or client+email) failed too often; None if allowed."""
    for key, limit in _buckets(request, email):
        if (cache.get(key) or 0) >= limit:
            window = settings.LOGIN_FAILURE_WINDOW_SECONDS
            return max(1, int(window - time.time() % window))
    return None


def record_failure(request: Request, email: str) -> None:
    timeout = settings.LOGIN_FAILURE_WINDOW_SECONDS + 5
    for key, _ in _buckets(request, email):
        if not cache.add(key, 1, timeout):
            try:
                cache.incr(key)
            except ValueError:  # expired between add and incr
                cache.add(key, 1, timeout)
            except CacheUnavailable:
                # Fails open: failures are not counted while the cache is unreachable (logged
                # once per outage); sign-in keeps working for everyone.
                return


def clear_failures(request: Request, email: str) -> None:
    cache.delete(_buckets(request, email)[0][0])
