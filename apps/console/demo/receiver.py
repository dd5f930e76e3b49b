"""What the demo target received from the product: alert webhooks on `POST /hooks/alerts` and
restart hooks (healing) on `POST /restart/<scenario>`, kept in memory for `GET /deliveries`.

With a secret (the demo's, from var/demo-credentials.json) every request's
X-Healthorch-Signature is checked the way a customer's receiver would check it; a request
that fails the check is answered 401 and listed as refused.
"""

from __future__ import annotations

import html
import json
import threading
from collections import deque
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from apps.core.signing import verify_signature

KEEP = 200


@dataclass(frozen=True)
class Delivery:
    at: str  # ISO 8601, UTC
    hook: str  # "alert" or "restart"
    event: str
    title: str
    signature: str  # "verified", "refused" or "not checked" (no secret configured)
    status: int  # what the target answered


@dataclass
class Receiver:
    secret: str = ""

    def __post_init__(self) -> None:
        self._items: deque[Delivery] = deque(maxlen=KEEP)
        self._lock = threading.Lock()

    def check(self, headers: dict[str, str], body: bytes) -> str:
        if not self.secret:
            return "not checked"
        ok = verify_signature(
            self.secret,
            headers.get("x-healthorch-timestamp"),
            body,
            headers.get("x-healthorch-signature"),
        )
        return "verified" if ok else "refused"

    def record(self, *, hook: str, body: bytes, signature: str, status: int) -> Delivery:
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        incident = payload.get("incident") if isinstance(payload.get("incident"), dict) else {}
        delivery = Delivery(
            at=datetime.now(UTC).isoformat(timespec="seconds"),
            hook=hook,
            event=str(payload.get("event") or ""),
            title=str(payload.get("title") or incident.get("title") or ""),
            signature=signature,
            status=status,
        )
        with self._lock:
            self._items.append(delivery)
        return delivery

    def items(self) -> list[dict]:
        """Newest first."""
        with self._lock:
            return [asdict(d) for d in reversed(self._items)]

    def page(self) -> str:
        rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(d[k]))}</td>"
                for k in ("at", "hook", "event", "title", "signature", "status")
            )
            + "</tr>"
            for d in self.items()
        )
        empty = '<tr><td colspan="6">nothing received yet</td></tr>'
        return (
            "<!doctype html><meta charset=utf-8><title>demo target: deliveries</title>"
            '<meta http-equiv="refresh" content="10">'
            "<h1>What the demo target received</h1>"
            "<p>Alert webhooks (POST /hooks/alerts) and restart hooks from healing "
            "(POST /restart/&lt;scenario&gt;), newest first; this page refreshes every 10 s. "
            "JSON: <a href=/deliveries.json>/deliveries.json</a>.</p>"
            "<table border=1 cellpadding=4><tr><th>at (UTC)</th><th>hook</th><th>event</th>"
            f"<th>title</th><th>signature</th><th>answered</th></tr>{rows or empty}</table>"
        )
