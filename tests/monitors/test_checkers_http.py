"""The http checker against real servers on 127.0.0.1 (no database, no mocks)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from apps.monitors.checkers.base import CheckSpec, ErrorClass, Outcome, RunContext
from apps.monitors.checkers.http import check, make_session
from tests.monitors import targets
from tests.monitors.targets import (
    ca_pem,
    expired_cert,
    issue_cert,
    run_check,
    serve_https,
    wrong_host_cert,
)
from tests.support import wait_for

# Shared fixtures from targets.py, bound here so pytest finds them.
http_target = targets.http_target
https_target = targets.https_target
refused_port = targets.refused_port
tls_ca = targets.tls_ca


def spec(url: str, *, allow_private: bool = True, timeout: float = 3.0, **config) -> CheckSpec:
    expected_ms = config.pop("expected_response_time_ms", None)
    return CheckSpec(
        monitor_id="m1",
        kind="http",
        timeout=timeout,
        config={"url": url, **config},
        allow_private=allow_private,
        expected_response_time_ms=expected_ms,
    )


def loopback_alias() -> str | None:
    """A name from /etc/hosts mapped to loopback that the name-based literal check does not
    catch, so only the resolver can refuse it; None when the machine has no such alias."""
    try:
        lines = Path("/etc/hosts").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split("#")[0].split()
        if len(fields) >= 2 and fields[0].startswith("127."):
            for name in fields[1:]:
                if "localhost" not in name.lower():
                    return name
    return None


def test_a_target_answering_200_is_up(http_target):
    url = http_target.route("/", body="hello")
    result = run_check(check, spec(url))
    assert result.outcome == Outcome.UP
    assert result.error_class == ErrorClass.NONE
    assert result.status_code == 200
    assert result.details["redirects"] == 0
    assert result.details["body_bytes"] == 5


def test_a_500_is_down_with_a_status_error_under_the_default_expectation(http_target):
    result = run_check(check, spec(http_target.route("/", status=500)))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.STATUS
    assert result.status_code == 500
    assert "200-399" in result.error_message


@pytest.mark.parametrize(
    ("expected", "status", "outcome"),
    [
        ([[204, 204]], 204, Outcome.UP),
        ([[204, 204]], 200, Outcome.DOWN),
        ([[200, 299], [404, 404]], 404, Outcome.UP),
        ([[200, 299], [404, 404]], 403, Outcome.DOWN),
        ([201, 202], 202, Outcome.UP),
        ([[500, 599]], 503, Outcome.UP),
    ],
)
def test_expected_status_ranges_decide_up_or_down(http_target, expected, status, outcome):
    url = http_target.route("/", status=status, body="")
    result = run_check(check, spec(url, expected_status=expected))
    assert result.outcome == outcome
    assert result.status_code == status
    assert result.error_class == ("" if outcome == Outcome.UP else ErrorClass.STATUS)


def test_method_headers_and_body_are_sent_as_configured(http_target):
    url = http_target.route("/submit", status=201)
    result = run_check(
        check, spec(url, method="post", headers={"X-Probe": "yes"}, body='{"ping": 1}')
    )
    assert result.outcome == Outcome.UP
    seen = http_target.requests[-1]
    assert (seen.method, seen.path, seen.body) == ("POST", "/submit", b'{"ping": 1}')
    assert seen.headers["x-probe"] == "yes"


def test_response_headers_are_lower_cased_and_capped_at_50(http_target):
    headers = {f"X-Extra-{i:02d}": str(i) for i in range(60)}
    result = run_check(check, spec(http_target.route("/", headers=headers)))
    recorded = result.details["headers"]
    assert len(recorded) == 50
    assert all(name == name.lower() for name in recorded)
    assert recorded["x-extra-00"] == "0"


def test_a_response_slower_than_expected_is_degraded(http_target):
    url = http_target.route("/", delay=0.25)
    result = run_check(check, spec(url, expected_response_time_ms=100))
    assert result.outcome == Outcome.DEGRADED
    assert result.error_class == ErrorClass.SLOW
    assert result.response_time_ms >= 250


def test_a_response_within_the_expected_time_is_up(http_target):
    result = run_check(check, spec(http_target.route("/"), expected_response_time_ms=2000))
    assert result.outcome == Outcome.UP


def test_a_hanging_server_times_out_within_the_check_timeout(http_target):
    """The hanging route answers 200 only after PEER_PATIENCE_SECONDS: a check that ignored its
    1 s timeout would be up, and the client giving up is what the server sees."""
    url = http_target.route("/", hang=True)
    started = time.monotonic()
    result = run_check(check, spec(url, timeout=1.0))
    elapsed = time.monotonic() - started
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.TIMEOUT
    assert elapsed >= 1.0  # it waited the whole timeout, not less
    assert "1s" in result.error_message
    wait_for(lambda: ("gone", "/") in http_target.events, 10, "the server to see the client go")
    assert ("answered", "/") not in http_target.events


def test_a_refused_connection_is_down_with_a_connection_error(refused_port):
    result = run_check(check, spec(f"http://127.0.0.1:{refused_port}/"))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.CONNECTION
    assert "refused" in result.error_message


def test_a_connection_dropped_mid_response_is_down_with_a_connection_error(http_target):
    url = http_target.route("/", body="x" * 10_000, close_mid_response=True)
    result = run_check(check, spec(url))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.CONNECTION
    assert "mid-response" in result.error_message


def test_a_redirect_is_followed_by_default(http_target):
    final = http_target.route("/final", body="there")
    url = http_target.route("/start", redirect_to=final)
    result = run_check(check, spec(url))
    assert result.outcome == Outcome.UP
    assert result.status_code == 200
    assert result.details["redirects"] == 1
    assert result.details["final_url"] == final
    assert http_target.hits["/final"] == 1


def test_a_redirect_is_not_followed_when_disabled(http_target):
    final = http_target.route("/final")
    url = http_target.route("/start", status=301, redirect_to=final)
    result = run_check(check, spec(url, follow_redirects=False))
    assert result.outcome == Outcome.UP  # 301 is inside the default 200-399
    assert result.status_code == 301
    assert result.details["redirects"] == 0
    assert result.details["headers"]["location"] == final
    assert http_target.hits["/final"] == 0


def test_only_the_first_64_kib_of_the_body_are_read(http_target):
    url = http_target.route("/", body="y" * 500_000)
    result = run_check(check, spec(url))
    assert result.outcome == Outcome.UP
    assert result.details["body_bytes"] == 64 * 1024
    assert result.details["body_truncated"] is True


def test_https_with_the_trusted_test_ca_is_up_and_records_the_expiry(tls_ca):
    not_after = (datetime.now(UTC) + timedelta(days=200)).replace(microsecond=0)
    with serve_https(tls_ca, issue_cert(tls_ca, not_after=not_after)) as target:
        result = run_check(check, spec(target.route("/"), ca_pem=ca_pem(tls_ca)))
    assert result.outcome == Outcome.UP
    assert result.cert_expires_at == not_after


def test_https_with_an_untrusted_certificate_is_down_with_a_tls_error(https_target):
    result = run_check(check, spec(https_target.route("/")))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.TLS
    assert "unable to get local issuer certificate" in result.error_message
    assert https_target.hits["/"] == 0


def test_https_with_an_expired_certificate_is_down_with_a_tls_error(tls_ca):
    with serve_https(tls_ca, expired_cert(tls_ca)) as target:
        result = run_check(check, spec(target.route("/"), ca_pem=ca_pem(tls_ca)))
    assert result.error_class == ErrorClass.TLS
    assert "expired" in result.error_message


def test_https_for_another_hostname_is_down_with_a_tls_error(tls_ca):
    with serve_https(tls_ca, wrong_host_cert(tls_ca)) as target:
        result = run_check(check, spec(target.route("/"), ca_pem=ca_pem(tls_ca)))
    assert result.error_class == ErrorClass.TLS
    assert "mismatch" in result.error_message.lower()


def test_https_without_verification_is_up_and_still_records_the_certificate(tls_ca):
    not_after = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    with serve_https(tls_ca, issue_cert(tls_ca, not_after=not_after)) as target:
        result = run_check(check, spec(target.route("/"), verify_tls=False))
    assert result.outcome == Outcome.UP
    assert result.cert_expires_at == not_after


def test_a_loopback_address_is_blocked_when_private_targets_are_not_allowed(http_target):
    result = run_check(check, spec(http_target.route("/"), allow_private=False))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.BLOCKED
    assert http_target.hits["/"] == 0


def test_localhost_is_blocked_when_private_targets_are_not_allowed(http_target):
    http_target.route("/")
    url = http_target.url("/", host="localhost")
    for shared_session in (None, False):
        result = run_check(check, spec(url, allow_private=False), shared_session=shared_session)
        assert result.error_class == ErrorClass.BLOCKED
    assert http_target.hits["/"] == 0


def test_a_strict_shared_session_refuses_a_name_resolving_to_loopback(http_target):
    http_target.route("/")
    url = http_target.url("/", host="localhost")
    result = run_check(check, spec(url, allow_private=True), shared_session=False)
    assert result.error_class == ErrorClass.BLOCKED
    assert "resolves to" in result.error_message
    assert http_target.hits["/"] == 0


def test_a_shared_session_applies_each_checks_own_policy_to_resolved_names(http_target):
    alias = loopback_alias()
    if alias is None:
        pytest.skip("no loopback alias in /etc/hosts")
    http_target.route("/")
    url = http_target.url("/", host=alias)

    async def both():
        async with make_session(allow_private=True, limit=10) as session:
            ctx = RunContext(http=session)
            return await asyncio.gather(
                check(spec(url, allow_private=True), ctx),
                check(spec(url, allow_private=False), ctx),
            )

    allowed, strict = asyncio.run(both())
    assert allowed.outcome == Outcome.UP
    assert strict.error_class == ErrorClass.BLOCKED
    assert http_target.hits["/"] == 1


def test_timings_cover_each_phase_and_the_total_includes_the_delay(http_target):
    http_target.route("/", delay=0.2)
    url = http_target.url("/", host="localhost")  # a name, so there is a lookup to time
    result = run_check(check, spec(url), shared_session=True)
    timings = result.timings
    assert result.outcome == Outcome.UP
    assert set(timings) == {"dns_ms", "connect_ms", "ttfb_ms", "total_ms"}
    assert timings["dns_ms"] > 0
    assert timings["connect_ms"] > 0
    assert 200 <= timings["ttfb_ms"] <= timings["total_ms"]
    assert timings["dns_ms"] + timings["connect_ms"] < timings["ttfb_ms"]
    assert result.response_time_ms == timings["total_ms"]


def test_waiting_for_a_free_connection_slot_is_not_counted_as_response_time(http_target):
    url = http_target.route("/", delay=0.3)

    async def two_through_one_slot():
        async with make_session(allow_private=True, limit=1) as session:
            ctx = RunContext(http=session)
            return await asyncio.gather(check(spec(url), ctx), check(spec(url), ctx))

    first, second = asyncio.run(two_through_one_slot())
    waiter = max(first, second, key=lambda r: r.details["queued_ms"])
    assert waiter.details["queued_ms"] >= 250  # it waited for the other's 300 ms answer
    for result in (first, second):
        assert result.outcome == Outcome.UP
        assert result.response_time_ms >= 300
    # Counted, the wait would make the waiter's response time at least the wait plus the
    # server's own 300 ms; not counted, it is its own request alone (which the wait, a whole
    # request of the other check, exceeds by its 300 ms).
    assert waiter.response_time_ms < waiter.details["queued_ms"] + 300


def test_a_url_that_is_not_http_is_down_with_a_protocol_error():
    result = run_check(check, spec("ftp://127.0.0.1/file"))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.PROTOCOL


def test_assertions_pass_or_fail_against_the_decoded_response(http_target):
    url = http_target.route(
        "/",
        body='{"status": "UP", "name": "caf\u00e9"}'.encode("latin-1"),
        headers={"Content-Type": "application/json; charset=latin-1"},
    )
    passing = ["status == 200", 'json.status == "UP"', 'json.name == "caf\u00e9"']
    result = run_check(check, spec(url, assertions=passing))
    assert result.outcome == Outcome.UP
    assert result.assertion_failures == []

    result = run_check(check, spec(url, assertions=[*passing, 'json.status == "DOWN"']))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.ASSERTION
    assert result.assertion_failures == [
        {"assertion": 'json.status == "DOWN"', "expected": '== "DOWN"', "actual": '"UP"'}
    ]
    assert 'json.status == "DOWN"' in result.error_message


def test_an_invalid_assertion_is_down_with_an_assertion_error(http_target):
    result = run_check(check, spec(http_target.route("/"), assertions=["status foo 200"]))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.ASSERTION
    assert result.error_message.startswith("invalid assertion:")
