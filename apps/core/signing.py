"""The signature on every webhook healthorch sends (alert webhooks, healing's webhook action).

`X-Healthorch-Signature: sha256=<hex>` is an HMAC-SHA256, keyed with the endpoint's secret, of
`<timestamp>.<body>`, where the timestamp is `X-Healthorch-Timestamp` (Unix seconds). A
receiver recomputes it and refuses a timestamp older than a few minutes, so a captured request
cannot be replayed later; `verify_signature` is that check, for tests and for receivers written
in Python.
"""

from __future__ import annotations

import hashlib
import hmac
import time


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    secret: str,
    timestamp: int | str,
    body: bytes,
    header: str | None,
    tolerance_seconds: int = 300,
) -> bool:
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs(time.time() - ts) > tolerance_seconds:
        return False
    if not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(sign(secret, ts, body).encode(), header.encode())
