"""The embedded default's cache: one SQLite file shared by every process on the machine.

Rate limits and login throttles count in the cache, so the cache must be shared by all web
processes or each one lets the whole limit through. Redis is that shared cache in production;
without a server, this backend keeps entries in a small SQLite file of its own (not the main
database: a counter bumped on every API request must not queue behind check-result writes, nor
show up in a request's query count). `add` and `incr` are single SQL statements, so two
processes counting the same key never lose an increment (Django's file and database caches
read, then write, and do). See docs/decisions/0015-rate-limit-counters.md. What happens when
the production cache (Redis) is unreachable is in `apps.core.cache`.

Integers are stored as SQL integers (so `incr` is `value = value + n` in the statement); any
other value is pickled. Expired rows are ignored when read and deleted every `CULL_EVERY` writes.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache

#: expiry stored for "never" (a float SQLite keeps exactly, far beyond any real timestamp)
NEVER = 1e18
#: delete expired rows once every this many writes in a process
CULL_EVERY = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cache (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID
"""


class SQLiteCache(BaseCache):
    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)
        self.path = Path(location)
        self._local = threading.local()
        self._writes = 0

    # --- the connection: one per thread, opened again after a fork ----------------------------

    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit: each statement is its own transaction, so no lock outlives it.
            conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _expiry(self, timeout: Any) -> float:
        at = self.get_backend_timeout(timeout)
        return NEVER if at is None else float(at)

    @staticmethod
    def _encode(value: Any) -> Any:
        if type(value) is int and -(2**63) <= value < 2**63:
            return value
        return pickle.dumps(value, pickle.HIGHEST_PROTOCOL)

    @staticmethod
    def _decode(stored: Any) -> Any:
        return stored if isinstance(stored, int) else pickle.loads(stored)  # noqa: S301 (our own rows)

    def _wrote(self) -> None:
        self._writes += 1
        if self._writes % CULL_EVERY == 0:
            self._db().execute("DELETE FROM cache WHERE expires <= ?", (time.time(),))

    # --- the cache API ---------------------------------------------------------------------------

    def get(self, key: str, default: Any = None, version: int | None = None) -> Any:
        key = self.make_and_validate_key(key, version=version)
        row = (
            self._db()
            .execute("SELECT value FROM cache WHERE key = ? AND expires > ?", (key, time.time()))
            .fetchone()
        )
        return default if row is None else self._decode(row[0])

    def set(
        self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        key = self.make_and_validate_key(key, version=version)
        if timeout is not None and timeout is not DEFAULT_TIMEOUT and timeout <= 0:
            self._db().execute("DELETE FROM cache WHERE key = ?", (key,))
            return
        self._db().execute(
            "INSERT INTO cache (key, value, expires) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires",
            (key, self._encode(value), self._expiry(timeout)),
        )
        self._wrote()

    def add(
        self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        """Store only if absent or expired, in one statement: of two processes adding the same
        key at once, exactly one gets True."""
        key = self.make_and_validate_key(key, version=version)
        cursor = self._db().execute(
            "INSERT INTO cache (key, value, expires) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires "
            "WHERE cache.expires <= ?",
            (key, self._encode(value), self._expiry(timeout), time.time()),
        )
        self._wrote()
        return cursor.rowcount == 1

    def incr(self, key: str, delta: int = 1, version: int | None = None) -> int:
        """Add `delta` in one statement (atomic across processes); ValueError if the key is
        absent, expired or not an integer, as Django's caches do. The expiry is unchanged."""
        key = self.make_and_validate_key(key, version=version)
        row = (
            self._db()
            .execute(
                "UPDATE cache SET value = value + ? "
                "WHERE key = ? AND expires > ? AND typeof(value) = 'integer' RETURNING value",
                (delta, key, time.time()),
            )
            .fetchone()
        )
        if row is None:
            raise ValueError(f"Key '{key}' not found")
        return row[0]

    def touch(self, key: str, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        cursor = self._db().execute(
            "UPDATE cache SET expires = ? WHERE key = ? AND expires > ?",
            (self._expiry(timeout), key, time.time()),
        )
        return cursor.rowcount == 1

    def delete(self, key: str, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return self._db().execute("DELETE FROM cache WHERE key = ?", (key,)).rowcount == 1

    def delete_prefix(self, prefix: str, version: int | None = None) -> int:
        """Delete every key starting with `prefix` (an operator clearing login throttles)."""
        full = self.make_key(prefix, version=version)
        cursor = self._db().execute(
            "DELETE FROM cache WHERE substr(key, 1, ?) = ?", (len(full), full)
        )
        return cursor.rowcount

    def has_key(self, key: str, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        row = (
            self._db()
            .execute("SELECT 1 FROM cache WHERE key = ? AND expires > ?", (key, time.time()))
            .fetchone()
        )
        return row is not None

    def clear(self) -> None:
        self._db().execute("DELETE FROM cache")

    def close(self, **kwargs: Any) -> None:
        # Kept open across requests: opening a SQLite file costs more than the statements.
        pass
