"""Per-process buffers for hot usage counters (API requests) and per-key rate limiting.

Counting every API request with its own UPSERT would make one hot row per organization the
busiest row in the database. Instead each process adds to an in-memory tally and flushes it
with one batched upsert at most every `FLUSH_SECONDS` (or `FLUSH_EVERY` requests). A process
that dies loses at most that window's API-request counts; billing-relevant counters (checks,
notifications) are written by their own batches, not buffered here.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import Counter
from typing import Any

from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.exceptions import Throttled

from apps.core.cache import CacheUnavailable, guarded
from apps.plans.models import UsageMetric

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 10.0
FLUSH_EVERY = 1000


class UsageBuffer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[Any, str]] = Counter()
        self._pending = 0
        self._last_flush = time.monotonic()

    def add(self, org_id: Any, metric: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[(org_id, metric)] += amount
            self._pending += amount
            due = (
                self._pending >= FLUSH_EVERY or time.monotonic() - self._last_flush >= FLUSH_SECONDS
            )
        if due:
            self.flush()

    def discard(self) -> None:
        with self._lock:
            self._counts.clear()
            self._pending = 0
            self._last_flush = time.monotonic()

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, Counter()
            self._pending = 0
            self._last_flush = time.monotonic()
        if not counts:
            return
        from apps.plans.services import usage_add_many

        try:
            usage_add_many(counts=[(org, metric, n) for (org, metric), n in counts.items()])
        except Exception:  # metering must never fail a request; put the counts back
            logger.exception("usage flush failed; will retry")
            with self._lock:
                self._counts.update(counts)


api_usage = UsageBuffer()
# Counts still buffered when a process exits cleanly are written then.
atexit.register(api_usage.flush)


def count_api_request(org_id: Any) -> None:
    api_usage.add(org_id, UsageMetric.API_REQUESTS)


def _incr_window(key: str) -> int:
    """Count one request in a window key that expires after the window; one round trip on Redis.

    Django's RedisCache.incr costs two round trips (EXISTS, then INCRBY) and cannot set an
    expiry, so with Redis we pipeline INCR and EXPIRE NX ourselves.
    """
    # The backend itself: `cache` is a proxy that no isinstance check recognises.
    backend = caches[DEFAULT_CACHE_ALIAS]
    if isinstance(backend, RedisCache):
        full_key = backend.make_and_validate_key(key)
        pipe = backend._cache.get_client(full_key, write=True).pipeline(transaction=False)
        pipe.incr(full_key)
        pipe.expire(full_key, 75, nx=True)
        with guarded():
            used, _ = pipe.execute()
        return int(used)
    # Other backends: their own atomic incr (the embedded default's shared SQLite cache).
    try:
        return backend.incr(key)
    except ValueError:  # first request of this window
        return 1 if backend.add(key, 1, 75) else backend.incr(key)


def check_rate(*, ident: str, per_minute: int | None, now: float | None = None) -> dict[str, str]:
    """A fixed one-minute window per key in the shared cache; raise Throttled past the limit.

    Returns the rate-limit headers for the response. The cache's atomic increment makes the
    count exact across processes (Redis in production).
    """
    if per_minute is None:
        return {}
    now = time.time() if now is None else now
    window = int(now // 60)
    try:
        used = _incr_window(f"ratelimit:{ident}:{window}")
    except CacheUnavailable:
        # Fails open: while the shared cache is unreachable requests are not counted (the
        # outage is logged once); refusing every API call would turn a cache outage into an
        # API outage.
        return {}
    reset = 60 - int(now % 60)
    if used > per_minute:
        raise Throttled(wait=reset, detail=f"Rate limit of {per_minute} requests per minute.")
    return {
        "X-RateLimit-Limit": str(per_minute),
        "X-RateLimit-Remaining": str(max(0, per_minute - used)),
        "X-RateLimit-Reset": str(reset),
    }
