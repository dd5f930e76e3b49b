"""Sign-in brute-force protection, for both doors: the API's login and the console's form.

Only failures count, in a fixed window (`LOGIN_FAILURE_WINDOW_SECONDS`), per (client, email)
and per client. The counts live in the shared cache (Redis in production, the embedded
default's cache file otherwise) with atomic add/incr, so every web process sees the same
numbers. Success clears the (client, email) bucket, so a user who finally types the right
password is not punished later.

Nothing here locks an account: a bucket names the client it counts, so failures from an
attacker's address never block the real user signing in from elsewhere, and every bucket
expires with its window. An operator can lift one sooner with
`manage.py clear_login_failures` (`login_throttles_clear`).
"""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle

from apps.core.cache import CacheUnavailable, delete_prefix

PREFIX = "login-fail:"


def _client(request: HttpRequest) -> str:
    # The client's address, honouring NUM_PROXIES as DRF's throttles do (reads only META).
    return BaseThrottle().get_ident(request)


def _normal(email: str) -> str:
    """The email as a key part: a digest of its normal form, so keys keep a fixed length
    whatever a client sends (a cache refuses long keys) and hold no address in clear."""
    return hashlib.sha256(email.strip().lower().encode("utf-8", "replace")).hexdigest()[:32]


def _buckets(request: HttpRequest, email: str) -> list[tuple[str, int]]:
    slot = int(time.time() // settings.LOGIN_FAILURE_WINDOW_SECONDS)
    client = _client(request)
    return [
        (f"{PREFIX}email:{_normal(email)}:{client}:{slot}", settings.LOGIN_FAILURES_PER_EMAIL),
        (f"{PREFIX}client:{client}:{slot}", settings.LOGIN_FAILURES_PER_CLIENT),
    ]


def login_retry_after(request: HttpRequest, email: str) -> int | None:
    """Seconds to wait if this client (or client+email) failed too often; None if allowed."""
    for key, limit in _buckets(request, email):
        if (cache.get(key) or 0) >= limit:
            window = settings.LOGIN_FAILURE_WINDOW_SECONDS
            return max(1, int(window - time.time() % window))
    return None


def login_failure_record(request: HttpRequest, email: str) -> None:
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


def login_failures_clear(request: HttpRequest, email: str) -> None:
    """A successful sign-in: forget this client's failures for this email."""
    cache.delete(_buckets(request, email)[0][0])


def login_throttles_clear(*, email: str | None = None, client: str | None = None) -> int:
    """Lift sign-in throttles before their window ends (an operator helping a locked-out
    user): the email's buckets from every client, the client's own bucket, or, with neither,
    all of them. Returns how many buckets were removed."""
    removed = 0
    if email:
        removed += delete_prefix(f"{PREFIX}email:{_normal(email)}:")
    if client:
        removed += delete_prefix(f"{PREFIX}client:{client.strip()}:")
    if not email and not client:
        removed += delete_prefix(PREFIX)
    return removed
