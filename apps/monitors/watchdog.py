"""Watching the watcher: the checker's own uplink, the dispatcher's backlog, and healthorch's
own heartbeat.

Both URLs come from the operator's settings (`HEALTHORCH_CANARY_URL`,
`HEALTHORCH_SELF_HEARTBEAT_URL`), not from a tenant, and may point inside on purpose (a
gateway, an internal heartbeat receiver), so the private-address refusal does not apply to
them. They still go through the outbound guard (`Guard.for_operator()`): one resolution,
pinned, the shared user agent, no proxies from the environment, no redirects followed (a 3xx
is an answer: the uplink works).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

import requests
from django.conf import settings
from django.utils import timezone

from apps.core import outbound, ssrf
from apps.monitors.checkers.base import CheckOutcome, Outcome
from apps.monitors.models import MonitorSchedule, ScheduleLane

logger = logging.getLogger(__name__)

CANARY_TIMEOUT_SECONDS = 5
CANARY_MEMORY_SECONDS = 15
SELF_HEARTBEAT_TIMEOUT_SECONDS = (
    10  # one canary fetch serves every batch of this process for a while
)
_last: tuple[float, bool] | None = None


def uplink_ok() -> bool:
    """Is the canary reachable from this worker? Remembered for a few seconds."""
    global _last
    url = settings.HEALTHORCH_CANARY_URL
    if not url:
        return True
    now = time.monotonic()
    if _last is not None and now - _last[0] < CANARY_MEMORY_SECONDS:
        return _last[1]
    try:
        with outbound.request(
            "GET", url, guard=outbound.Guard.for_operator(), timeout=CANARY_TIMEOUT_SECONDS
        ) as response:
            ok = response.status_code < 500
    except (requests.RequestException, ssrf.ResolutionFailed):
        ok = False
    if not ok:
        logger.warning("canary unreachable; failures will be inconclusive", extra={"canary": url})
    _last = (now, ok)
    return ok


def forget() -> None:
    global _last
    _last = None


def vet_failures(outcomes: list[CheckOutcome]) -> list[CheckOutcome]:
    """Failures seen while the canary is unreachable say nothing about the targets."""
    if not any(o.outcome == Outcome.DOWN for o in outcomes) or uplink_ok():
        return outcomes
    return [
        replace(
            o,
            outcome=Outcome.INCONCLUSIVE,
            error_message=f"checker uplink failed (canary unreachable); {o.error_message}"[:500],
        )
        if o.outcome == Outcome.DOWN
        else o
        for o in outcomes
    ]


def dispatch_backlog_seconds() -> float:
    """How long the oldest due check has waited unclaimed (0: none is waiting).

    The dispatcher claims due checks every 2 s, so this stays near 0 while it runs; it grows
    second by second when beat, the worker running the dispatch or the broker stops. Read from
    the schedule rows themselves (one row from the partial index `schedule_due`), so any
    process can tell, whether or not it ever dispatched anything.
    """
    now = timezone.now()
    oldest = (
        MonitorSchedule.objects.filter(lane=ScheduleLane.CHECK, next_check_at__lte=now)
        .order_by("next_check_at")
        .values_list("next_check_at", flat=True)
        .first()
    )
    return 0.0 if oldest is None else (now - oldest).total_seconds()


def scheduler_health() -> dict[str, dict[str, object]]:
    """The scheduler's part of /health: stale once a due check waited past the threshold."""
    backlog = dispatch_backlog_seconds()
    stale_after = settings.HEALTHORCH_SCHEDULER_STALE_SECONDS
    return {
        "scheduler": {
            "status": "stale" if backlog >= stale_after else "ok",
            "backlog_seconds": round(backlog, 1),
            "stale_after_seconds": stale_after,
        }
    }


def ping_self_heartbeat() -> bool:
    """Ping the outside heartbeat, unless dispatch is stale: then go quiet, so the outside
    service raises the alarm even though beat itself still runs."""
    url = settings.HEALTHORCH_SELF_HEARTBEAT_URL
    if not url:
        return False
    backlog = dispatch_backlog_seconds()
    if backlog >= settings.HEALTHORCH_SCHEDULER_STALE_SECONDS:
        logger.warning(
            "self heartbeat withheld: due checks are not being dispatched",
            extra={"backlog_seconds": round(backlog, 1)},
        )
        return False
    try:
        outbound.request(
            "GET", url, guard=outbound.Guard.for_operator(), timeout=SELF_HEARTBEAT_TIMEOUT_SECONDS
        ).close()
    except (requests.RequestException, ssrf.ResolutionFailed) as exc:
        logger.warning("self heartbeat failed", extra={"error": str(exc)})
        return False
    return True
