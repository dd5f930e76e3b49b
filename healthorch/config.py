"""Strict readers for settings taken from the environment.

django-environ parses values, but some of its casts are forgiving in ways that hide mistakes
(``DEBUG=flase`` silently reads as False). Every reader here either returns a valid value or
raises ``ImproperlyConfigured`` naming the variable, so a bad deployment fails at start instead
of behaving oddly at run time. Each reader also honours a ``<NAME>_FILE`` variant so secrets can
come from mounted files (Docker/Kubernetes secrets) instead of the process environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}
_UNSET = object()


def _raw(name: str) -> str | None:
    file_var = f"{name}_FILE"
    if file_var in os.environ:
        path = Path(os.environ[file_var])
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{file_var}: cannot read {path}: {exc}") from exc
    return os.environ.get(name)


def _fail(name: str, value: str, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name}={value!r} is invalid: expected {expected}")


def string(name: str, default: Any = _UNSET) -> str:
    value = _raw(name)
    if value is None:
        if default is _UNSET:
            raise ImproperlyConfigured(f"{name} is required but not set")
        return default
    return value


def boolean(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _fail(name, value, "a boolean (1/0, true/false, yes/no, on/off)")


def integer(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        parsed = int(value)
    except ValueError:
        raise _fail(name, value, "an integer") from None
    if minimum is not None and parsed < minimum:
        raise _fail(name, value, f"an integer >= {minimum}")
    return parsed


def choice(name: str, default: str, choices: Iterable[str], *, upper: bool = False) -> str:
    value = _raw(name)
    if value is None:
        return default
    normalized = value.strip().upper() if upper else value.strip().lower()
    allowed = list(choices)
    if normalized not in allowed:
        raise _fail(name, value, "one of " + ", ".join(allowed))
    return normalized


_RATE = re.compile(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$")


def rate(name: str, default: str) -> str:
    """A DRF throttle rate such as ``20/hour``."""
    value = string(name, default).strip()
    if not _RATE.match(value):
        raise _fail(name, value, "a rate such as 10/min or 20/hour")
    return value


def str_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def _url(name: str, default: str, parser: Callable[[str], dict], what: str) -> dict:
    value = _raw(name)
    raw = default if value is None else value
    try:
        return parser(raw)
    except (ImproperlyConfigured, KeyError, ValueError) as exc:
        raise _fail(name, raw, f"a {what} URL ({exc})") from None


_DB_ENGINES = {
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}


def database(name: str, default: str) -> dict:
    """Parse a postgres:// or sqlite:/// URL into a Django DATABASES entry.

    The engines are swapped for django-prometheus' instrumented twins (same behaviour, plus
    query/connection metrics on /metrics).
    """
    raw = string(name, default)
    parsed = _url(name, default, environ.Env.db_url_config, "database")
    engine = _DB_ENGINES.get(parsed.get("ENGINE", ""))
    if engine is None:
        raise _fail(name, raw, "a postgres:// or sqlite:/// database URL")
    parsed["ENGINE"] = engine
    return parsed


def cache(name: str, default: str) -> dict:
    return _url(name, default, environ.Env.cache_url_config, "cache")


def email(name: str, default: str) -> dict:
    return _url(name, default, environ.Env.email_url_config, "email")


def broker(name: str, default: str) -> str:
    value = string(name, default)
    scheme = value.split("://", 1)[0] if "://" in value else ""
    if scheme not in {"filesystem", "redis", "rediss", "amqp", "amqps", "sqla+sqlite", "memory"}:
        raise _fail(name, value, "a broker URL such as redis://host:6379/0 or filesystem://")
    return value
