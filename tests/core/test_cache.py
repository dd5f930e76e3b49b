"""The embedded default's shared cache (a SQLite file): Django's cache semantics, and counts
that stay exact when several processes increment the same key at once."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
import time_machine
from django.core.cache import caches

from apps.core.cache import delete_prefix
from apps.core.sqlite_cache import SQLiteCache

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def shared(tmp_path):
    return SQLiteCache(str(tmp_path / "cache.sqlite3"), {})


@pytest.mark.parametrize(
    "value", [7, 0, -3, 2**70, "text", {"a": [1, 2]}, None, True, 1.5, b"\x00bytes"]
)
def test_values_come_back_as_they_went_in(shared, value):
    shared.set("k", value, 60)
    assert shared.get("k", "missing") == value
    assert type(shared.get("k", "missing")) is type(value)


def test_entries_expire_and_add_replaces_only_what_expired(shared):
    with time_machine.travel(1_000_000, tick=False) as clock:
        assert shared.add("k", 1, 10) is True
        assert shared.add("k", 2, 10) is False
        assert shared.get("k") == 1
        clock.shift(11)
        assert shared.get("k", "gone") == "gone"
        assert shared.has_key("k") is False
        assert shared.add("k", 3, 10) is True
        assert shared.get("k") == 3


def test_incr_keeps_the_expiry_and_refuses_what_is_not_there(shared):
    with time_machine.travel(1_000_000, tick=False) as clock:
        shared.set("n", 1, 10)
        assert shared.incr("n") == 2
        assert shared.incr("n", 5) == 7
        clock.shift(11)
        with pytest.raises(ValueError, match="not found"):
            shared.incr("n")
        with pytest.raises(ValueError, match="not found"):
            shared.incr("never-set")
        shared.set("text", "a", 10)
        with pytest.raises(ValueError, match="not found"):
            shared.incr("text")


@pytest.mark.parametrize("backend", ["sqlite", "locmem", "configured"])
def test_delete_prefix_removes_only_keys_that_start_with_it(backend, tmp_path, settings):
    """On each supported backend; "configured" is this run's own (Redis when CACHE_URL says)."""
    if backend == "sqlite":
        location = str(tmp_path / "c.sqlite3")
        settings.CACHES = {
            "default": {"BACKEND": "apps.core.sqlite_cache.SQLiteCache", "LOCATION": location}
        }
    elif backend == "locmem":
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    cache = caches["default"]
    cache.clear()
    for key in ("login-fail:email:a@x.io:1", "login-fail:email:a@x.io:2", "login-fail:email:b"):
        cache.set(key, 1, 60)
    # `_`, `%`, `*` and `?` are no wildcards here, and case matters.
    for key in (
        "login-fail:email:a_x.io:1",
        "login-fail:email:a*x.io:1",
        "LOGIN-FAIL:email:a@x.io:1",
    ):
        cache.set(key, 1, 60)
    assert delete_prefix("login-fail:email:a@x.io:") == 2
    assert delete_prefix("login-fail:email:a?x.io:") == 0
    assert cache.get("login-fail:email:a@x.io:1") is None
    for kept in ("login-fail:email:b", "login-fail:email:a_x.io:1", "login-fail:email:a*x.io:1"):
        assert cache.get(kept) == 1
    assert cache.get("LOGIN-FAIL:email:a@x.io:1") == 1


def test_clear_and_delete(shared):
    shared.set("a", 1)
    shared.set("b", 2)
    assert shared.delete("a") is True
    assert shared.delete("a") is False
    shared.clear()
    assert shared.get("b") is None


_COUNTER = """
import sys, time
from pathlib import Path
from apps.core.sqlite_cache import SQLiteCache
cache = SQLiteCache(sys.argv[1], {})
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.01)
for _ in range(int(sys.argv[3])):
    if not cache.add("hits", 1, 300):
        cache.incr("hits")
"""


def test_processes_incrementing_one_key_lose_no_count(tmp_path):
    """Four processes, 250 increments each, started together: exactly 1,000. (Django's file
    cache, which reads then writes, lost counts here when tried in place of this backend.)"""
    location, go = str(tmp_path / "cache.sqlite3"), tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _COUNTER, location, str(go), "250"],
            cwd=ROOT,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    time.sleep(0.5)  # let them all reach the start line; correctness does not depend on it
    go.touch()
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    assert SQLiteCache(location, {}).get("hits") == 1000
