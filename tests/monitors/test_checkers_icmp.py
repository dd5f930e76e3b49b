"""The icmp checker: real echo requests to 127.0.0.1, the SSRF guard, the verdict on partial and
total loss, and the message a worker gets where the kernel refuses ICMP sockets."""

from __future__ import annotations

import asyncio
import os

import icmplib
import pytest

from apps.monitors.checkers import icmp
from apps.monitors.checkers.base import CheckOutcome, CheckSpec, ErrorClass, Outcome, RunContext
from tests.monitors.targets import run_check

NOBODY = 65534


def spec(host="127.0.0.1", *, allow_private=True, timeout=3.0, expected_ms=None, **config):
    return CheckSpec(
        monitor_id="m1",
        kind="icmp",
        timeout=timeout,
        config={"host": host, **config},
        allow_private=allow_private,
        expected_response_time_ms=expected_ms,
    )


def _can_ping() -> bool:
    try:
        icmplib.ping("127.0.0.1", count=1, timeout=1, privileged=os.geteuid() == 0)
    except icmplib.SocketPermissionError:
        return False
    return True


needs_icmp = pytest.mark.skipif(
    not _can_ping(),
    reason="this machine lets this test process send no ICMP (not root, and "
    "net.ipv4.ping_group_range excludes its group)",
)


@needs_icmp
def test_loopback_answers_every_echo_request():
    result = run_check(icmp.check, spec(count=3, interval_ms=50))
    assert result.outcome == Outcome.UP, result.error_message
    assert result.details["sent"] == result.details["received"] == 3
    assert result.details["loss_percent"] == 0
    assert result.details["address"] == "127.0.0.1"
    assert 0 < result.response_time_ms == result.details["rtt_avg_ms"] < 1000
    assert set(result.timings) == {"dns_ms", "total_ms"}


@needs_icmp
def test_a_name_is_resolved_through_the_guard_and_pinged():
    result = run_check(icmp.check, spec("localhost", count=1))
    assert result.outcome == Outcome.UP
    assert result.details["address"] in ("127.0.0.1", "::1")


@needs_icmp
def test_slower_than_expected_is_degraded():
    # No round trip is faster than 0 ms: any answer is "slow" against a 0 ms expectation.
    result = run_check(icmp.check, spec(count=1, expected_ms=0))
    assert result.outcome == Outcome.DEGRADED
    assert result.error_class == ErrorClass.SLOW


def test_loopback_is_blocked_when_private_targets_are_not_allowed():
    for host in ("127.0.0.1", "localhost"):
        result = run_check(icmp.check, spec(host, allow_private=False))
        assert result.outcome == Outcome.DOWN
        assert result.error_class == ErrorClass.BLOCKED
        assert "sent" not in result.details  # refused before any packet


def _host(sent: int, rtts: list[float]) -> icmplib.Host:
    return icmplib.Host("192.0.2.1", sent, rtts)  # a documentation address: never contacted


@pytest.mark.parametrize(
    ("sent", "rtts", "outcome", "error_class", "message"),
    [
        (3, [1.0, 2.0, 3.0], Outcome.UP, ErrorClass.NONE, ""),
        (3, [1.0, 3.0], Outcome.DEGRADED, ErrorClass.PACKET_LOSS, "1 of 3 echo requests lost"),
        (3, [], Outcome.DOWN, ErrorClass.TIMEOUT, "no echo reply from 192.0.2.1 (3 requests"),
    ],
)
def test_the_verdict_on_what_came_back(sent, rtts, outcome, error_class, message):
    # The judgement alone, on icmplib's own result type: real partial loss cannot be produced
    # on loopback without changing the machine's network settings.
    result = icmp.judge(spec(), _host(sent, rtts), CheckOutcome(outcome=Outcome.UP))
    assert (result.outcome, result.error_class) == (outcome, error_class)
    assert result.error_message.startswith(message)
    if rtts:
        assert result.response_time_ms == pytest.approx(sum(rtts) / len(rtts))
    else:
        assert result.response_time_ms is None


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root, to drop to another user")
def test_a_worker_the_kernel_refuses_icmp_reports_inconclusive_naming_the_setting():
    with open("/proc/sys/net/ipv4/ping_group_range") as f:
        low, high = (int(n) for n in f.read().split())
    if low <= NOBODY <= high:
        pytest.skip("this kernel lets nobody's group ping: nothing to refuse")
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # the child: become nobody, as a worker not run as root is, and check
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            result = asyncio.run(icmp.check(spec(count=1), RunContext()))
            os.write(write_end, f"{result.outcome} {result.error_message}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        said = pipe.read()
    os.waitpid(child, 0)
    assert said == f"{Outcome.INCONCLUSIVE} {icmp.NOT_PERMITTED}"
