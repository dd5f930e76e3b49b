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
    connect_error_message,
    down,
    ms,
    open_first,
    resolve_host_port,
    timed_checker,
    up_or_slow,
)


async def _run(spec: CheckSpec, timings: dict[str, float], started: float) -> CheckOutcome:
    target = await resolve_host_port(spec, timings, started)
    if isinstance(target, CheckOutcome):
        return target
    try:
        _, writer = await open_first(target.addresses, target.port)
    except OSError as exc:
        message = connect_error_message(exc, target.host, target.port)
        return down(ErrorClass.CONNECTION, message, timings=timings)
    connected = time.monotonic()
    peer = writer.get_extra_info("peername")
    abort(writer)
    timings["connect_ms"] = ms(connected - target.at)
    timings["total_ms"] = ms(connected - started)
    outcome = CheckOutcome(
        outcome=Outcome.UP,
        response_time_ms=timings["total_ms"],
        timings=timings,
        details={"remote_address": str(peer[0]) if peer else None},
    )
    return up_or_slow(spec, outcome)


check = timed_checker("tcp", _run)
