"""A monitor's secret (the password of a postgres DSN or an HTTP URL), read back for a check.

It is stored Fernet-encrypted in `Monitor.secret` (services.py writes it). The engine needs the
plain value to build a check and services.py needs it to compare a config-as-code file, so
the reading lives here, beside neither.
"""

from __future__ import annotations

from apps.core import crypto
from apps.monitors.models import Monitor


def secret_of(monitor: Monitor) -> str:
    return crypto.decrypt(monitor.secret) if monitor.secret else ""
