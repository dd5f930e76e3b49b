"""The smtp checker against real SMTP servers (aiosmtpd) on 127.0.0.1: plain, STARTTLS and
implicit TLS, with certificates from a test CA (no mocks)."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import trustme
from aiosmtpd.controller import Controller

from apps.monitors.checkers import smtp
from apps.monitors.checkers.base import CheckSpec, ErrorClass, Outcome
from tests.monitors import targets
from tests.monitors.targets import ca_pem, expiring_cert, run_check, wrong_host_cert
from tests.support import free_port

tls_ca = targets.tls_ca
refused_port = targets.refused_port


class _Handler:
    """Accepts nothing: the checker must never send mail. Counts any attempt."""

    def __init__(self) -> None:
        self.mail_from = 0

    async def handle_MAIL(self, server, session, envelope, address, options):
        self.mail_from += 1
        return "550 no mail here"


def _server_context(ca: trustme.CA, cert: trustme.LeafCert | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    (cert or ca.issue_cert("127.0.0.1", "localhost")).configure_cert(context)
    return context


def implicit_tls_controller(ca: trustme.CA) -> type[Controller]:
    class ImplicitTLSController(Controller):
        def _trigger_server(self) -> None:
            # aiosmtpd's start-up probe wraps its socket with the server's context; a client
            # context that trusts the test CA lets the probe's handshake succeed.
            client = ssl.create_default_context()
            ca.configure_trust(client)
            with (
                socket.create_connection((self.hostname, self.port), 2.0) as raw,
                client.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
            ):
                tls.recv(1024)

    return ImplicitTLSController


@contextmanager
def serve(
    ca: trustme.CA | None = None,
    *,
    starttls: bool = True,
    implicit: bool = False,
    cert: trustme.LeafCert | None = None,
) -> Iterator[tuple[Controller, _Handler]]:
    handler = _Handler()
    context = _server_context(ca, cert) if ca is not None else None
    options: dict = {"hostname": "127.0.0.1", "port": free_port(), "server_hostname": "mx.test"}
    if implicit:
        options["ssl_context"] = context
    elif starttls and context is not None:
        options["tls_context"] = context
    controller = (implicit_tls_controller(ca) if implicit else Controller)(handler, **options)
    controller.start()
    try:
        yield controller, handler
    finally:
        controller.stop()


def spec(port: int, *, host="127.0.0.1", allow_private=True, timeout=5.0, **config):
    return CheckSpec(
        monitor_id="m1",
        kind="smtp",
        timeout=timeout,
        config={"host": host, "port": port, **config},
        allow_private=allow_private,
    )


def test_starttls_with_a_trusted_certificate_is_up_with_banner_extensions_and_timings(tls_ca):
    with serve(tls_ca) as (server, handler):
        result = run_check(smtp.check, spec(server.port, ca_pem=ca_pem(tls_ca)))
    assert result.outcome == Outcome.UP, result.error_message
    assert result.details["banner"].startswith("mx.test ")
    assert result.details["tls"] == "starttls"
    assert "8BITMIME" in result.details["extensions"]
    assert "STARTTLS" not in result.details["extensions"]  # the EHLO after the handshake
    assert set(result.timings) == {"dns_ms", "connect_ms", "banner_ms", "tls_ms", "total_ms"}
    assert result.cert_expires_at is not None
    assert handler.mail_from == 0


def test_a_server_that_does_not_offer_starttls_is_down(tls_ca):
    with serve(None, starttls=False) as (server, _):
        result = run_check(smtp.check, spec(server.port, ca_pem=ca_pem(tls_ca)))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.PROTOCOL
    assert result.error_message == "the server does not offer STARTTLS"


def test_plain_smtp_when_asked_for_is_up_without_tls():
    with serve(None, starttls=False) as (server, _):
        result = run_check(smtp.check, spec(server.port, tls="none"))
    assert result.outcome == Outcome.UP
    assert "tls_ms" not in result.timings
    assert result.cert_expires_at is None


def test_a_certificate_for_another_name_is_down_as_tls(tls_ca):
    with serve(tls_ca, cert=wrong_host_cert(tls_ca)) as (server, _):
        result = run_check(smtp.check, spec(server.port, ca_pem=ca_pem(tls_ca)))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.TLS
    assert result.error_message.startswith("certificate not valid")


def test_an_untrusted_certificate_is_down_as_tls(tls_ca):
    with serve(tls_ca) as (server, _):
        result = run_check(smtp.check, spec(server.port))  # the test CA is not trusted
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.TLS


def test_a_certificate_inside_the_warning_window_is_degraded(tls_ca):
    with serve(tls_ca, cert=expiring_cert(tls_ca, days=3)) as (server, _):
        result = run_check(smtp.check, spec(server.port, ca_pem=ca_pem(tls_ca)))
    assert result.outcome == Outcome.DEGRADED
    assert result.error_class == ErrorClass.CERT_EXPIRING
    assert 2.9 < result.details["days_left"] <= 3


def test_implicit_tls_greets_over_tls(tls_ca):
    with serve(tls_ca, implicit=True) as (server, _):
        result = run_check(smtp.check, spec(server.port, tls="implicit", ca_pem=ca_pem(tls_ca)))
    assert result.outcome == Outcome.UP, result.error_message
    assert result.timings["tls_ms"] <= result.timings["banner_ms"]


@contextmanager
def _raw_server(greeting: bytes) -> Iterator[int]:
    """A TCP server that sends `greeting` and then waits for the client to close."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_one() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.sendall(greeting)
            connection.settimeout(5)
            try:
                while connection.recv(1024):
                    pass
            except OSError:
                pass

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        listener.close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("greeting", "message"),
    [
        (b"554 mx.test no service for you\r\n", "greeting was 554 mx.test no service for you"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "not an SMTP reply: 'SSH-2.0-OpenSSH_9.2'"),
    ],
)
def test_a_server_that_is_not_answering_as_smtp_is_down_saying_what_it_sent(greeting, message):
    with _raw_server(greeting) as port:
        result = run_check(smtp.check, spec(port, tls="none"))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.PROTOCOL
    assert result.error_message == message


def test_a_refused_port_is_down_as_a_connection_error(refused_port):
    result = run_check(smtp.check, spec(refused_port))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.CONNECTION


def test_a_silent_server_times_out_within_the_monitors_timeout():
    with targets.serve_tcp(silent=True) as target:
        result = run_check(smtp.check, spec(target.port, timeout=0.5, tls="none"))
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.TIMEOUT
    assert "connect_ms" in result.timings


def test_loopback_is_blocked_before_connecting_when_private_targets_are_not_allowed():
    with targets.serve_tcp() as target:
        result = run_check(smtp.check, spec(target.port, host="localhost", allow_private=False))
        assert result.outcome == Outcome.DOWN
        assert result.error_class == ErrorClass.BLOCKED
        assert target.accepted == 0
