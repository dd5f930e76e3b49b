"""The HTTP checker through the outbound guard: every redirect hop is checked before it
connects, a rebound name is refused, and the check connects to the address it vetted. Real
listeners on 127.0.0.1; names resolve through the table in tests/core/names.py (why: see
there)."""

from __future__ import annotations

import pytest

from apps.monitors.checkers.base import ErrorClass, Outcome
from apps.monitors.checkers.http import check
from tests.core.names import PUBLIC
from tests.monitors.targets import run_check, serve_http, serve_tcp
from tests.monitors.test_checkers_http import spec

SESSIONS = {"own session": None, "shared strict session": False}


@pytest.fixture
def listener():
    with serve_tcp() as target:
        yield target


@pytest.mark.parametrize("session", sorted(SESSIONS))
@pytest.mark.parametrize("to", ["literal", "name", "localhost", "ipv6 loopback", "metadata"])
def test_a_redirect_hop_to_a_blocked_address_is_refused_before_connecting(
    names, loopback_stand_in, listener, to, session
):
    names.set("inside.test", "127.0.0.1")
    location = {
        "literal": f"http://127.0.0.1:{listener.port}/",
        "name": f"http://inside.test:{listener.port}/",
        "localhost": f"http://localhost:{listener.port}/",
        "ipv6 loopback": f"http://[::1]:{listener.port}/",
        "metadata": "http://169.254.169.254/latest/meta-data/",
    }[to]
    with serve_http(host=loopback_stand_in) as first:
        url = first.route("/", redirect_to=location)

        result = run_check(check, spec(url, allow_private=False), shared_session=SESSIONS[session])

        assert first.hits["/"] == 1  # the first hop was allowed and answered
    assert result.outcome == Outcome.DOWN
    assert result.error_class == ErrorClass.BLOCKED
    assert listener.accepted == 0


def test_a_name_rebound_to_loopback_at_check_time_is_refused(names, listener):
    names.set("api.test", PUBLIC, "127.0.0.1")
    assert names("api.test", 80)[0][4][0] == PUBLIC  # the answer when the monitor was saved

    result = run_check(check, spec(f"http://api.test:{listener.port}/", allow_private=False))

    assert result.error_class == ErrorClass.BLOCKED
    assert "resolves to a private or reserved address" in result.error_message
    assert listener.accepted == 0


@pytest.mark.parametrize("session", [None, True])
def test_the_check_connects_to_the_address_it_vetted(names, pin_pair, session):
    names.set("api.test", "127.0.0.1", "127.0.0.2")
    pin_pair.checked.route("/health")

    result = run_check(
        check, spec(f"http://api.test:{pin_pair.port}/health"), shared_session=session
    )

    assert result.outcome == Outcome.UP, result.error_message
    assert result.details["remote_address"] == "127.0.0.1"
    assert pin_pair.checked.requests[0].headers["host"] == f"api.test:{pin_pair.port}"
    assert pin_pair.decoy.accepted == 0
    assert names.asked["api.test"] == 1
