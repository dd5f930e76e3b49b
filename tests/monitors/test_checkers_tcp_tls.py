"""The tcp and tls checkers against real servers on 127.0.0.1 (no database, no mocks)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from apps.monitors.checkers import tcp, tls
from apps.monitors.checkers.base import CheckSpec, ErrorClass, Outcome
from tests.monitors import targets
from tests.monitors.targets import (
    ca_pem,
    expired_cert,
    expiring_cert,
    issue_cert,
    run_check,
    serve_https,
    serve_tcp,
    wrong_host_cert,
)

# Shared fixtures from targets.py, bound here so pytest finds them.
refused_port = targets.refused_port
tcp_target = targets.tcp_target
tls_ca = targets.tls_ca


def spec(kind: str, port: int, *, host="127.0.0.1", allow_private=True, timeout=3.0, **config):
    return CheckSpec(
        monitor_id="m1",
        kind=kind,
        timeout=timeout,
        config={"host": host, "port": port, **config},
        allow_private=allow_private,
    )


def test_tcp_to_a_listening_port_is_up_with_timings(tcp_target):
    result = run_check(tcp.check, spec("tcp", tcp_target.port))
    assert result.outcome == Outcome.UP
    assert set(result.timings) == {"dns_ms", "connect_ms", "total_ms"}
    assert result.response_time_ms == result.timings["total_ms"] >= result.timings["connect_ms"]
    assert result.details["remote_address"] == "127.0.0.1"


def test_tcp_through_a_name_resolves_and_connects(tcp_target):
    result = run_check(tcp.check, spec("tcp", tcp_target.port, host="localhost"))
    assert result.outcome == Outcome.UP


def test_tcp_to_a_refused_port_is_down_with_a_connection_error(refused_port):
    result = run_check(tcp.check, spec("tcp", refused_port))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.CONNECTION
    assert result.error_message == f"connection refused by 127.0.0.1:{refused_port}"


def test_tcp_to_loopback_is_blocked_when_private_targets_are_not_allowed(tcp_target):
    for host in ("127.0.0.1", "localhost"):
        result = run_check(tcp.check, spec("tcp", tcp_target.port, host=host, allow_private=False))
        assert result.outcome == Outcome.DOWN
        assert result.error_class == ErrorClass.BLOCKED
    assert tcp_target.accepted == 0


def test_tls_with_a_trusted_long_lived_certificate_is_up_with_details(tls_ca):
    not_after = (datetime.now(UTC) + timedelta(days=90)).replace(microsecond=0)
    with serve_https(tls_ca, issue_cert(tls_ca, not_after=not_after)) as target:
        result = run_check(tls.check, spec("tls", target.port, ca_pem=ca_pem(tls_ca)))
    assert result.outcome == Outcome.UP
    assert result.cert_expires_at == not_after
    assert result.details["subject_cn"] == "127.0.0.1"
    assert set(result.details["sans"]) == {"127.0.0.1", "localhost"}
    assert 89 < result.details["days_left"] <= 90
    assert set(result.timings) == {"dns_ms", "connect_ms", "tls_ms", "total_ms"}


def test_tls_expiring_inside_the_warning_window_is_degraded(tls_ca):
    with serve_https(tls_ca, expiring_cert(tls_ca, days=5)) as target:
        result = run_check(tls.check, spec("tls", target.port, ca_pem=ca_pem(tls_ca)))
    assert result.outcome == Outcome.DEGRADED
    assert result.error_class == ErrorClass.CERT_EXPIRING
    assert "14-day warning window" in result.error_message
    assert 4.9 < result.details["days_left"] <= 5


def test_tls_expiring_outside_a_shorter_warning_window_is_up(tls_ca):
    with serve_https(tls_ca, expiring_cert(tls_ca, days=5)) as target:
        config = {"ca_pem": ca_pem(tls_ca), "expiry_warning_days": 3}
        result = run_check(tls.check, spec("tls", target.port, **config))
    assert result.outcome == Outcome.UP


def test_tls_with_an_expired_certificate_is_down_and_still_records_the_expiry(tls_ca):
    cert = expired_cert(tls_ca)
    with serve_https(tls_ca, cert) as target:
        result = run_check(tls.check, spec("tls", target.port, ca_pem=ca_pem(tls_ca)))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.TLS
    assert "expired" in result.error_message
    assert result.cert_expires_at < datetime.now(UTC)
    assert result.details["days_left"] < 0


def test_tls_for_another_hostname_is_down_with_the_mismatch(tls_ca):
    with serve_https(tls_ca, wrong_host_cert(tls_ca)) as target:
        result = run_check(tls.check, spec("tls", target.port, ca_pem=ca_pem(tls_ca)))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.TLS
    assert "mismatch" in result.error_message.lower()
    assert result.details["sans"] == ["wrong.example"]
    assert result.cert_expires_at is not None


def test_tls_verifies_against_the_configured_server_name(tls_ca):
    with serve_https(tls_ca, wrong_host_cert(tls_ca)) as target:
        config = {"ca_pem": ca_pem(tls_ca), "server_name": "wrong.example"}
        result = run_check(tls.check, spec("tls", target.port, **config))
    assert result.outcome == Outcome.UP
    assert result.details["server_name"] == "wrong.example"


def test_tls_signed_by_an_unknown_ca_is_down_with_the_reason(tls_ca):
    with serve_https(tls_ca) as target:
        result = run_check(tls.check, spec("tls", target.port))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.TLS
    assert "unable to get local issuer certificate" in result.error_message
    assert result.cert_expires_at is not None


def test_tls_to_a_server_that_does_not_speak_tls_is_down_with_a_tls_error(tcp_target):
    result = run_check(tls.check, spec("tls", tcp_target.port))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.TLS
    assert result.cert_expires_at is None


def test_tls_to_a_refused_port_is_down_with_a_connection_error(refused_port):
    result = run_check(tls.check, spec("tls", refused_port))
    assert result.error_class == ErrorClass.CONNECTION


def test_tls_to_loopback_is_blocked_when_private_targets_are_not_allowed(tls_ca):
    with serve_https(tls_ca) as target:
        result = run_check(tls.check, spec("tls", target.port, allow_private=False))
        assert result.error_class == ErrorClass.BLOCKED
        assert target.hits == {}


def test_tls_to_a_peer_that_stalls_the_handshake_times_out_in_time():
    """The silent peer hangs up only after PEER_PATIENCE_SECONDS: a check that ignored its 1 s
    timeout would report the hang-up, not a timeout."""
    with serve_tcp(silent=True) as target:
        started = time.monotonic()
        result = run_check(tls.check, spec("tls", target.port, timeout=1.0))
        elapsed = time.monotonic() - started
    assert result.error_class == ErrorClass.TIMEOUT
    assert elapsed >= 1.0  # it waited the whole timeout, not less
    assert "connect_ms" not in result.timings  # the handshake never finished
