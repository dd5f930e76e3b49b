"""What the libcurl client of the http checker adds (decision 0025), against real servers on
127.0.0.1: the pin holds even if libcurl were asked to go elsewhere, a DNS answer that changes
between the guard and the connection is never followed, the body stops at its limit, a timed
out check leaves nothing behind on the shared client, proxies from the environment are
ignored, and redirects are followed hop by hop with the method rules of before."""

from __future__ import annotations

import asyncio
import gc
import os
import time
import warnings

import pytest

from apps.monitors.checkers.base import ErrorClass, Outcome, RunContext
from apps.monitors.checkers.curl import Request
from apps.monitors.checkers.http import BODY_LIMIT, check, make_session
from apps.monitors.checkloop import CheckLoop
from tests.core.names import STAND_IN
from tests.monitors import targets
from tests.monitors.targets import ca_pem, issue_cert, run_check, serve_https, serve_tcp
from tests.monitors.test_checkers_http import spec
from tests.support import wait_for

http_target = targets.http_target
refused_port = targets.refused_port
tls_ca = targets.tls_ca


def test_the_client_refuses_to_connect_anywhere_but_the_vetted_addresses(http_target):
    """The second lock: even a transfer whose URL points elsewhere connects only to what the
    guard vetted (here the URL names 127.0.0.2, the vetted set holds 127.0.0.1 alone)."""
    with serve_tcp(host=STAND_IN) as decoy:
        url = f"http://{STAND_IN}:{decoy.port}/"

        async def go():
            async with make_session(allow_private=True, limit=1) as client:
                request = Request(url=url, host=STAND_IN, port=decoy.port, addresses=[])
                request.addresses = ["127.0.0.1"]
                async with client.gate:
                    return await client.fetch(request)

        response = asyncio.run(go())
        assert response.error != 0
        assert response.refused_address == STAND_IN
        assert decoy.accepted == 0


def test_a_dns_rebind_after_the_guard_is_not_followed_through_the_check_loop(names, pin_pair):
    """The name answers 127.0.0.1 to the guard and 127.0.0.2 to anyone asking later: the
    check, run by the process's check loop on its shared client, connects to the first."""
    names.set("api.test", "127.0.0.1", "127.0.0.2")
    pin_pair.checked.route("/health")
    loop = CheckLoop()
    try:
        [result] = loop.run([spec(f"http://api.test:{pin_pair.port}/health")], allow_private=True)
    finally:
        loop.close()
    assert result.outcome == Outcome.UP, result.error_message
    assert result.details["remote_address"] == "127.0.0.1"
    assert pin_pair.decoy.accepted == 0
    assert names.asked["api.test"] == 1  # libcurl never resolved the name itself


def test_a_body_of_exactly_the_limit_is_whole(http_target):
    url = http_target.route("/", body=b"x" * BODY_LIMIT)
    result = run_check(check, spec(url))
    assert result.outcome == Outcome.UP
    assert result.details["body_bytes"] == BODY_LIMIT
    assert result.details["body_truncated"] is False


def test_a_huge_body_is_cut_at_the_limit_and_the_assertions_see_the_first_part(http_target):
    url = http_target.route("/", body=b"head" + b"x" * (8 * 1024 * 1024) + b"tail")
    result = run_check(
        check, spec(url, assertions=['body contains "head"', 'body contains "tail"'])
    )
    assert result.details["body_bytes"] == BODY_LIMIT
    assert result.details["body_truncated"] is True
    assert result.error_class == ErrorClass.ASSERTION
    assert [f["assertion"] for f in result.assertion_failures] == ['body contains "tail"']


def test_a_timed_out_check_leaves_the_shared_client_usable_and_hangs_up(http_target):
    hang = http_target.route("/hang", hang=True)
    fast = http_target.route("/fast")

    async def go():
        async with make_session(allow_private=True, limit=10) as client:
            ctx = RunContext(http=client)
            timed_out = await check(spec(hang, timeout=0.5), ctx)
            after = await check(spec(fast), ctx)
            return timed_out, after

    timed_out, after = asyncio.run(go())
    assert timed_out.error_class == ErrorClass.TIMEOUT
    assert after.outcome == Outcome.UP
    # The abandoned transfer's connection was closed, not left to hang on the server.
    wait_for(lambda: ("gone", "/hang") in http_target.events, 5, "the hung request dropped")


def test_checks_leave_no_descriptor_open_and_warn_of_no_unclosed_socket(http_target, refused_port):
    """Every connection's socket is opened by the client (the pin) and handed to libcurl:
    after 50 checks, up and refused, the process holds no more descriptors than before, and
    no socket was left for the collector to close (a ResourceWarning each, and its cost)."""
    up = http_target.route("/up")

    async def go():
        async with make_session(allow_private=True, limit=10) as client:
            ctx = RunContext(http=client)
            await check(spec(up), ctx)  # the client's own descriptors (epoll, timers) exist
            before = len(os.listdir("/proc/self/fd"))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                results = await asyncio.gather(*(check(spec(up), ctx) for _ in range(40)))
                refused = await asyncio.gather(
                    *(check(spec(f"http://127.0.0.1:{refused_port}/"), ctx) for _ in range(10))
                )
                gc.collect()
            return before, len(os.listdir("/proc/self/fd")), results, refused, caught

    before, after, results, refused, caught = asyncio.run(go())
    assert {r.outcome for r in results} == {Outcome.UP}
    assert {r.error_class for r in refused} == {ErrorClass.CONNECTION}
    assert after <= before
    assert [str(w.message) for w in caught if w.category is ResourceWarning] == []


def test_a_busy_loop_after_the_response_is_not_counted_as_the_targets_time(http_target):
    """The response time is libcurl's clock of the transfer. Here the loop is kept busy for
    0.3 s right after libcurl has the whole response (a slow callback, as thousands of other
    checks' callbacks would be), before the check resumes: the target's 50 ms is reported,
    not 350."""
    url = http_target.route("/slowish", delay=0.05)

    async def go():
        async with make_session(allow_private=True, limit=1) as client:
            finish = client._finish

            def finish_then_stall(handle, error, message):
                finish(handle, error, message)
                time.sleep(0.3)  # still in libcurl's callback: the check resumes after this

            client._finish = finish_then_stall
            started = time.monotonic()
            result = await check(spec(url), RunContext(http=client))
            return result, time.monotonic() - started

    result, wall = asyncio.run(go())
    assert result.outcome == Outcome.UP, result.error_message
    assert wall >= 0.35  # the stall happened, inside the check
    assert 50 <= result.response_time_ms < 250
    assert 50 <= result.timings["total_ms"] < 250
    assert result.timings["ttfb_ms"] <= result.timings["total_ms"]


def test_proxies_from_the_environment_are_ignored(http_target, refused_port, monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{refused_port}")
    result = run_check(check, spec(http_target.route("/")))
    assert result.outcome == Outcome.UP, result.error_message
    assert http_target.hits["/"] == 1


def test_a_redirect_to_another_protocol_is_refused(http_target):
    url = http_target.route("/", redirect_to="ftp://127.0.0.1/file")
    result = run_check(check, spec(url))
    assert result.error_class == ErrorClass.PROTOCOL


@pytest.mark.parametrize(("status", "method"), [(303, "GET"), (302, "GET"), (307, "POST")])
def test_a_redirected_post_follows_the_method_rules(http_target, status, method):
    final = http_target.route("/final")
    url = http_target.route("/start", redirect_to=final, status=status)
    result = run_check(check, spec(url, method="POST", body="x=1"))
    assert result.outcome == Outcome.UP, result.error_message
    assert result.details["redirects"] == 1
    assert http_target.requests[-1].method == method
    assert http_target.requests[-1].body == (b"x=1" if method == "POST" else b"")


def test_too_many_redirects_are_a_protocol_error(http_target):
    loop_url = http_target.url("/loop")
    http_target.route("/loop", redirect_to=loop_url)
    result = run_check(check, spec(loop_url))
    assert result.error_class == ErrorClass.PROTOCOL
    assert "redirects" in result.error_message


def test_https_timings_separate_the_tls_handshake(tls_ca):
    with serve_https(tls_ca, issue_cert(tls_ca)) as target:
        result = run_check(check, spec(target.route("/"), ca_pem=ca_pem(tls_ca)))
    assert result.outcome == Outcome.UP, result.error_message
    timings = result.timings
    assert set(timings) == {"dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "total_ms"}
    assert 0 < timings["tls_ms"] < timings["connect_ms"] <= timings["ttfb_ms"]


@pytest.mark.parametrize(
    "config",
    [
        {"headers": {"X-Probe": "yes\r\nX-Smuggled: 1"}},
        {"headers": {"X Probe": "yes"}},
        {"method": "GET / HTTP/1.1\r\nX-Smuggled: 1\r\n"},
    ],
)
def test_a_header_or_method_that_would_smuggle_a_line_is_refused(http_target, config):
    result = run_check(check, spec(http_target.route("/"), **config))
    assert result.error_class == ErrorClass.PROTOCOL
    assert http_target.hits["/"] == 0
