"""ICMP checker: does the host answer echo requests, and how many are lost?

config: host, count (3 echo requests, 1-10), interval_ms (200 between requests).

Up when every request was answered (degraded when the average round trip is slower than
expected); degraded with `packet_loss` when some were lost; down when none came back. The
response time is the average round trip; details carry sent, received, loss and the
min/avg/max round trips.

Permissions: the checker opens an unprivileged ICMP socket, which the kernel allows only to the
groups in `net.ipv4.ping_group_range`. Where it refuses, a worker running as root falls back to
a raw socket; any other worker reports the check inconclusive, saying which setting to change,
instead of calling a healthy host down.
timings: dns_ms, total_ms.
"""

from __future__ import annotations

import os
import time

import icmplib

from apps.monitors.checkers.base import CheckOutcome, CheckSpec, ErrorClass, Outcome
from apps.monitors.checkers.net import (
    addresses_or_down,
    down,
    judged,
    ms,
    timed_checker,
    up_or_slow,
)

DEFAULT_COUNT = 3
DEFAULT_INTERVAL_MS = 200
NOT_PERMITTED = (
    "this worker may not send ICMP echo requests: allow its group in the kernel setting "
    "net.ipv4.ping_group_range (or run ICMP monitors on a worker that may)"
)


def judge(spec: CheckSpec, host: icmplib.Host, outcome: CheckOutcome) -> CheckOutcome:
    """Fill `outcome` from what came back for `host`."""
    outcome.details.update(
        sent=host.packets_sent,
        received=host.packets_received,
        loss_percent=round(host.packet_loss * 100, 1),
        rtt_min_ms=round(host.min_rtt, 3),
        rtt_avg_ms=round(host.avg_rtt, 3),
        rtt_max_ms=round(host.max_rtt, 3),
    )
    if host.packets_received == 0:
        message = f"no echo reply from {host.address} ({host.packets_sent} requests sent)"
        return judged(outcome, Outcome.DOWN, ErrorClass.TIMEOUT, message)
    outcome.response_time_ms = round(host.avg_rtt, 3)
    lost = host.packets_sent - host.packets_received
    if lost:
        message = (
            f"{lost} of {host.packets_sent} echo requests lost "
            f"({outcome.details['loss_percent']:g}%)"
        )
        return judged(outcome, Outcome.DEGRADED, ErrorClass.PACKET_LOSS, message)
    return up_or_slow(spec, outcome)


async def _ping(address: str, count: int, interval: float, timeout: float) -> icmplib.Host:
    try:
        return await icmplib.async_ping(
            address, count=count, interval=interval, timeout=timeout, privileged=False
        )
    except icmplib.SocketPermissionError:
        if os.geteuid() != 0:
            raise
        return await icmplib.async_ping(
            address, count=count, interval=interval, timeout=timeout, privileged=True
        )


async def _run(spec: CheckSpec, timings: dict[str, float], started: float) -> CheckOutcome:
    host = str(spec.config.get("host") or "")
    try:
        count = int(spec.config.get("count") or DEFAULT_COUNT)
        interval = int(spec.config.get("interval_ms") or DEFAULT_INTERVAL_MS) / 1000
    except (TypeError, ValueError):
        return down(ErrorClass.PROTOCOL, "count and interval_ms must be whole numbers")
    addresses = await addresses_or_down(host, 0, allow_private=spec.allow_private)
    if isinstance(addresses, CheckOutcome):
        return addresses
    resolved = time.monotonic()
    timings["dns_ms"] = ms(resolved - started)
    # Each reply may take what is left of the monitor's timeout once the requests are sent.
    left = spec.timeout - (resolved - started) - interval * (count - 1)
    try:
        answered = await _ping(addresses[0], count, interval, max(0.1, left))
    except icmplib.SocketPermissionError:
        return CheckOutcome(
            outcome=Outcome.INCONCLUSIVE,
            error_class=ErrorClass.PROTOCOL,
            error_message=NOT_PERMITTED,
            timings=timings,
        )
    except icmplib.ICMPLibError as exc:
        return down(ErrorClass.CONNECTION, f"cannot ping {host}: {exc}", timings=timings)
    timings["total_ms"] = ms(time.monotonic() - started)
    outcome = CheckOutcome(outcome=Outcome.UP, timings=timings, details={"address": addresses[0]})
    return judge(spec, answered, outcome)


check = timed_checker("icmp", _run)
