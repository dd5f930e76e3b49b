"""TCP checker: can a connection be opened? config: host, port.

timings: dns_ms (guarded resolution), connect_ms, total_ms.
"""

from __future__ import annotations

import time

from apps.monitors.checkers.base import (
    CheckOutcome,
    CheckSpec,
    ErrorClass,
    Outcome,
)
from apps.monitors.checkers.net import (
    abort,
    addresses_or_down,
    connect_error_message,
    down,
    ms,
    open_first,
    timed_checker,
    up_or_slow,
)


async def _run(spec: CheckSpec, timings: dict[str, float], started: float) -> CheckOutcome:
    host = str(spec.config.get("host") or "")
    try:
        port = int(spec.config["port"])
    except (KeyError, TypeError, ValueError):
        return down(ErrorClass.PROTOCOL, "config needs a numeric port")
    addresses = await addresses_or_down(host, port, allow_private=spec.allow_private)
    if isinstance(addresses, CheckOutcome):
        return addresses
    resolved = time.monotonic()
    timings["dns_ms"] = ms(resolved - started)
    try:
        _, writer = await open_first(addresses, port)
    except OSError as exc:
        return down(ErrorClass.CONNECTION, connect_error_message(exc, host, port), timings=timings)
    connected = time.monotonic()
    peer = writer.get_extra_info("peername")
    abort(writer)
    timings["connect_ms"] = ms(connected - resolved)
    timings["total_ms"] = ms(connected - started)
    outcome = CheckOutcome(
        outcome=Outcome.UP,
        response_time_ms=timings["total_ms"],
        timings=timings,
        details={"remote_address": str(peer[0]) if peer else None},
    )
    return up_or_slow(spec, outcome)


check = timed_checker("tcp", _run)
