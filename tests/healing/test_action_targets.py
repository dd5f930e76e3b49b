"""Where healing actions may connect: both HTTP actions go through the outbound guard. A real
listener on 127.0.0.1 records that no connection arrived; names resolve through the table in
tests/core/names.py (why: see there)."""

from __future__ import annotations

import socket

import pytest

from apps.healing.actions import REGISTRY, ActionError, action_for
from tests.core.names import PUBLIC
from tests.healing.test_actions import REQUEST, SECRET
from tests.monitors.targets import serve_http, serve_tcp

CONFIGS = {
    "http_request": lambda url: {"method": "POST", "url": url, "body": {"restart": "api"}},
    "webhook": lambda url: {"url": url, "secret": SECRET},
}


@pytest.fixture
def listener():
    with serve_tcp() as target:
        yield target


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_a_name_rebound_to_loopback_is_refused_before_any_byte_leaves(
    names, listener, settings, kind
):
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = False
    names.set("restart.test", PUBLIC, "127.0.0.1")
    config = REGISTRY[kind].clean_config(CONFIGS[kind](f"http://restart.test:{listener.port}/"))
    # Saving checks literals and loopback names only; this was the name's answer then.
    assert socket.getaddrinfo("restart.test", 80)[0][4][0] == PUBLIC

    with pytest.raises(ActionError, match="action target blocked"):
        action_for(kind, config).run(REQUEST)

    assert listener.accepted == 0


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_the_action_connects_to_the_address_it_checked(names, pin_pair, kind):
    names.set("restart.test", "127.0.0.1", "127.0.0.2")
    pin_pair.checked.route("/restart", status=202)
    url = f"http://restart.test:{pin_pair.port}/restart"

    outcome = action_for(kind, CONFIGS[kind](url)).run(REQUEST)

    assert outcome == {"status_code": 202}
    [seen] = pin_pair.checked.requests
    assert seen.headers["host"] == f"restart.test:{pin_pair.port}"
    assert seen.headers["user-agent"] == "healthorch-healing/1"
    assert pin_pair.decoy.accepted == 0
    assert names.asked["restart.test"] == 1


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_a_redirect_inside_is_neither_followed_nor_connected_to(
    loopback_stand_in, listener, settings, kind
):
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = False
    with serve_http(host=loopback_stand_in) as first:
        url = first.route("/restart", redirect_to=f"http://127.0.0.1:{listener.port}/")

        with pytest.raises(ActionError, match="answered 302"):
            action_for(kind, CONFIGS[kind](url)).run(REQUEST)

        assert first.hits["/restart"] == 1
    assert listener.accepted == 0
