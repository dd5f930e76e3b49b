"""What keeps the suite order-free and parallel-safe (a pytest plugin, see tests/conftest.py).

- The broker: every test gets a namespace of its own on the configured broker (a folder of its
  own with the filesystem transport, a key prefix of its own on Redis), and the namespace is
  deleted when the test ends, messages a worker held for later (a retry's countdown) included.
  A message a test left behind can therefore never keep the next test's worker busy, and two
  xdist workers never consume each other's tasks.
- The Celery app: whatever a test or an in-thread worker changed on the shared app (the queues a
  worker was told to consume, routes, any `app.conf` key) is put back when the test ends. A
  worker started with `queues=[...]` otherwise keeps that choice on the app, and the next
  plain worker ignores the default queue.
- The cache: on Redis, each pytest process keys its entries under its own prefix and a test's
  "fresh cache" deletes only those; FLUSHDB would empty the cache of a parallel process mid-test.
  On the embedded default's SQLite cache file, each pytest process gets a file of its own.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import override_settings
from kombu import pools as kombu_pools

from healthorch.celery import app


def process_tag() -> str:
    """`gw0`, `gw1`... under pytest-xdist, `main` otherwise."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


# --- The cache -------------------------------------------------------------------------------


def _redis_cache_url() -> str | None:
    location = django_settings.CACHES["default"].get("LOCATION")
    backend = django_settings.CACHES["default"]["BACKEND"]
    if backend.endswith("RedisCache") and isinstance(location, str):
        return location
    return None


@pytest.fixture(scope="session", autouse=True)
def _cache_key_prefix_per_process(tmp_path_factory) -> Iterator[None]:
    if django_settings.CACHES["default"]["BACKEND"].endswith("SQLiteCache"):
        # The embedded default's cache file is shared by every process of the machine: each
        # pytest process gets a file of its own, so clearing it touches no parallel process.
        location = str(tmp_path_factory.mktemp(f"cache-{process_tag()}") / "cache.sqlite3")
        caches = {"default": {**django_settings.CACHES["default"], "LOCATION": location}}
        with override_settings(CACHES=caches):
            yield
        return
    if _redis_cache_url() is None:
        yield  # the in-process cache is already the process's own
        return
    prefix = f"test-{process_tag()}-{uuid.uuid4().hex[:8]}"
    caches = {"default": {**django_settings.CACHES["default"], "KEY_PREFIX": prefix}}
    with override_settings(CACHES=caches):
        yield
        clear_cache()


def clear_cache() -> None:
    """Empty this process's cache, and only its own: on Redis, delete the keys under its prefix
    (Django's clear() is a FLUSHDB, which would empty a parallel process's cache mid-test)."""
    url = _redis_cache_url()
    if url is None:
        cache.clear()
        return
    import redis

    prefix = django_settings.CACHES["default"].get("KEY_PREFIX")
    assert prefix, "the per-process cache prefix is set for the whole session"
    client = redis.Redis.from_url(url)
    try:
        _delete_matching(client, f"{prefix}:*")
    finally:
        client.close()


def _delete_matching(client, pattern: str) -> None:
    batch = []
    for key in client.scan_iter(match=pattern, count=500):
        batch.append(key)
        if len(batch) == 500:
            client.delete(*batch)
            batch.clear()
    if batch:
        client.delete(*batch)


# --- The broker and the Celery app -----------------------------------------------------------


def _reset_connection_pools() -> None:
    """Celery caches a connection pool and a producer pool on the app, made with the transport
    options in force when first used, and kombu keeps every pool in a process-wide group: a
    new broker namespace needs new ones. kombu.pools.reset() closes and forgets the group (what
    a fork does); the app's two cached references have no public reset (app.close() would also
    unregister the app, losing shared tasks imported later), so they are dropped here."""
    kombu_pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


def _forget_queue_choices() -> None:
    """Drop the queue declarations, router and default queue cached on `app.amqp`, rebuilt from
    `app.conf` on next use: a worker's `queues=[...]` is kept there (Queues.select)."""
    for name in ("queues", "router", "default_queue"):
        app.amqp.__dict__.pop(name, None)
    app.amqp.flush_routes()


def _conf_snapshot() -> dict:
    snapshot = {}
    for key in list(app.conf):
        try:
            snapshot[key] = app.conf[key]
        except KeyError:  # a name Django's settings list that is no Celery setting
            continue
    return snapshot


@pytest.fixture(autouse=True)
def _own_broker_namespace(tmp_path_factory) -> Iterator[None]:
    with broker_namespace(tmp_path_factory.getbasetemp()):
        yield


@contextmanager
def broker_namespace(parent: Path) -> Iterator[None]:
    """A broker namespace of its own (a folder made under `parent` for the filesystem
    transport), deleted on exit, and the Celery app back as it was on entry."""
    conf_before = _conf_snapshot()
    url = app.conf.broker_url or ""
    options = dict(conf_before.get("broker_transport_options") or {})
    folder: Path | None = None
    prefix: str | None = None
    if url.startswith("filesystem://"):
        folder = Path(tempfile.mkdtemp(prefix="broker-", dir=parent))
        (folder / "queue").mkdir()
        (folder / "control").mkdir()
        options.update(
            data_folder_in=str(folder / "queue"),
            data_folder_out=str(folder / "queue"),
            control_folder=str(folder / "control"),
        )
    elif url.startswith(("redis://", "rediss://")):
        prefix = f"test-{process_tag()}-{uuid.uuid4().hex[:12]}:"
        options["global_keyprefix"] = prefix
    try:
        with _transport_options(options):
            yield
    finally:
        for key, value in conf_before.items():
            if key == "beat_schedule":
                continue  # installed by the app itself when it is finalized, maybe mid-test
            if app.conf.get(key) is not value and app.conf.get(key) != value:
                app.conf[key] = value
        _forget_queue_choices()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        if prefix is not None:
            _purge_redis_prefix(url, prefix)


@contextmanager
def configured_broker() -> Iterator[None]:
    """Publish, for a while, where a worker started as a process of its own consumes: the broker
    as the settings configure it (no key prefix, the default folders), not the test's private
    namespace, which a separate process cannot know."""
    import healthorch.settings as configured

    with _transport_options(dict(getattr(configured, "CELERY_BROKER_TRANSPORT_OPTIONS", {}) or {})):
        yield


@contextmanager
def _transport_options(options: dict) -> Iterator[None]:
    """The app (fresh connection pools) and Django's settings on these broker transport options
    for a while; the app's options as they were afterwards."""
    before = app.conf.broker_transport_options
    _reset_connection_pools()
    app.conf.broker_transport_options = options
    # The console reads the filesystem broker's folder from Django's settings: the same one.
    with override_settings(CELERY_BROKER_TRANSPORT_OPTIONS=options):
        try:
            yield
        finally:
            _reset_connection_pools()
            app.conf.broker_transport_options = before


def _purge_redis_prefix(url: str, prefix: str) -> None:
    """Every key of the namespace: queues, the unacked messages and their index, bindings."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        _delete_matching(client, f"{prefix}*")
    finally:
        client.close()
