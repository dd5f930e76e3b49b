"""The shared cache may go away (Redis restarted, stopped, unreachable); the product must not.

Everything the product keeps in the cache is either a copy of something in the database (an
organization's entitlements, a rendered status page, the anomaly scan's cursor) or a counter
(rate limits, login failures). So while the cache cannot be reached:

- reads miss (`get` answers the default, `get_many` nothing), and the caller computes the value
  from the database as on any miss;
- writes are dropped (`set`, `delete`, `touch`...), and `add` answers False;
- counting (`incr`, `decr`) raises `CacheUnavailable`: a count cannot be made up, so each
  rate limit decides whether it fails open or closed (both fail open: see the operations page
  "What happens when a part fails").

The outage is logged once per process when it starts and once when the cache answers again,
never per request. While it lasts, each process tries the cache again at most every
`RETRY_SECONDS`; in between, calls give up at once instead of paying a connect attempt.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis.exceptions
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache

from apps.core.sqlite_cache import SQLiteCache

logger = logging.getLogger(__name__)

RETRY_SECONDS = 5.0

# A server that is gone, restarting (LOADING), demoted to a replica, or slower than the
# socket timeout; the embedded cache's file locked or its disk full. Other errors (a wrong
# type at a key) are bugs and stay loud.
UNREACHABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    OSError,
    sqlite3.OperationalError,
)


class CacheUnavailable(Exception):
    """The shared cache cannot be reached; a count or a lock cannot be had."""


class _Outage:
    """This process's view of the cache: reachable, or down since when."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.down_since: float | None = None
        self._last_try = 0.0
        self._skipped = 0

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def should_skip(self) -> bool:
        """While down, let one call through every RETRY_SECONDS to see if it came back."""
        with self._lock:
            if self.down_since is None:
                return False
            now = time.monotonic()
            if now - self._last_try >= RETRY_SECONDS:
                self._last_try = now
                return False
            self._skipped += 1
            return True

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            if self.down_since is not None:
                return
            self.down_since = self._last_try = time.monotonic()
            self._skipped = 0
        logger.warning(
            "cache unreachable: reads fall back to the database, rate limits are not counted",
            extra={"error": f"{type(exc).__name__}: {exc}"[:300], "retry_seconds": RETRY_SECONDS},
        )

    def recovered(self) -> None:
        if self.down_since is None:  # the common case: no lock on the hot path
            return
        with self._lock:
            if self.down_since is None:
                return
            seconds = time.monotonic() - self.down_since
            skipped, self.down_since, self._skipped = self._skipped, None, 0
        logger.warning(
            "cache reachable again",
            extra={"outage_seconds": round(seconds, 1), "calls_skipped": skipped},
        )


outage = _Outage()


def unavailable() -> bool:
    """Did this process find the shared cache unreachable (and not reachable since)?"""
    return outage.down


@contextmanager
def guarded() -> Iterator[None]:
    """Run cache calls; an unreachable server becomes `CacheUnavailable` and is noted once."""
    if outage.should_skip():
        raise CacheUnavailable("cache unreachable (retrying every few seconds)")
    try:
        yield
    except UNREACHABLE as exc:
        outage.failed(exc)
        raise CacheUnavailable(str(exc)) from exc
    outage.recovered()


class _Resilient:
    """The outage rules above, over any cache backend."""

    def _soft(self, method: str, default: Any, *args: Any) -> Any:
        try:
            with guarded():
                return getattr(super(), method)(*args)
        except CacheUnavailable:
            return default

    def get(self, key, default=None, version=None):
        return self._soft("get", default, key, default, version)

    def get_many(self, keys, version=None):
        return self._soft("get_many", {}, keys, version)

    def has_key(self, key, version=None):
        return self._soft("has_key", False, key, version)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._soft("add", False, key, value, timeout, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        self._soft("set", None, key, value, timeout, version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._soft("set_many", list(data), data, timeout, version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._soft("touch", False, key, timeout, version)

    def delete(self, key, version=None):
        return self._soft("delete", False, key, version)

    def delete_many(self, keys, version=None):
        self._soft("delete_many", None, keys, version)

    def clear(self):
        return self._soft("clear", False)

    def incr(self, key, delta=1, version=None):
        # decr is incr with a negative delta in Django's base class.
        with guarded():
            return super().incr(key, delta, version)


class ResilientRedisCache(_Resilient, RedisCache):
    """Django's Redis cache, with the outage rules above (settings use it for redis:// URLs)."""


class ResilientSQLiteCache(_Resilient, SQLiteCache):
    """The embedded default's cache file, with the same rules: a full disk or a lock held too
    long makes it miss and not count, as an unreachable Redis does, instead of failing every
    API request that counts a rate limit."""


def delete_prefix(prefix: str, alias: str = DEFAULT_CACHE_ALIAS) -> int:
    """Delete the keys starting with `prefix` from the cache `alias` (any of the supported
    backends); how many. The backend itself is looked up: `django.core.cache.cache` is a proxy
    that no isinstance check recognises."""
    backend = caches[alias]
    if isinstance(backend, SQLiteCache):
        return backend.delete_prefix(prefix)
    if isinstance(backend, RedisCache):
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", backend.make_key(prefix)) + "*"
        client = backend._cache.get_client(write=True)
        keys = list(client.scan_iter(match=pattern, count=1000))
        return client.delete(*keys) if keys else 0
    # The per-process memory cache (CACHE_URL=locmemcache://): this process's keys only.
    stored = getattr(backend, "_cache", {})
    full, bare = backend.make_key(prefix), len(backend.make_key(""))
    doomed = [key for key in list(stored) if key.startswith(full)]
    for key in doomed:
        backend.delete(key[bare:])
    return len(doomed)
