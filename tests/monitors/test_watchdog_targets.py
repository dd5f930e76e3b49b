"""The canary and the self heartbeat are the operator's URLs: reached even when tenants'
internal targets are refused, and still pinned to the address resolved once. Names resolve
through the table in tests/core/names.py (why: see there). No database, except where the self
heartbeat first reads the dispatch backlog (it is withheld while dispatch is stale)."""

from __future__ import annotations

import pytest

from apps.monitors import watchdog


@pytest.fixture(autouse=True)
def _fresh_canary():
    watchdog.forget()
    yield
    watchdog.forget()


def test_the_canary_on_an_internal_name_is_asked_and_pinned(names, pin_pair, settings):
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = False
    names.set("gateway.internal", "127.0.0.1", "127.0.0.2")
    pin_pair.checked.route("/canary")
    settings.HEALTHORCH_CANARY_URL = f"http://gateway.internal:{pin_pair.port}/canary"

    assert watchdog.uplink_ok() is True

    assert pin_pair.checked.hits["/canary"] == 1
    assert pin_pair.decoy.accepted == 0
    assert names.asked["gateway.internal"] == 1


@pytest.mark.django_db
def test_the_self_heartbeat_on_an_internal_name_is_sent_and_pinned(names, pin_pair, settings):
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = False
    names.set("beats.internal", "127.0.0.1", "127.0.0.2")
    pin_pair.checked.route("/hb")
    settings.HEALTHORCH_SELF_HEARTBEAT_URL = f"http://beats.internal:{pin_pair.port}/hb"

    assert watchdog.ping_self_heartbeat() is True

    assert pin_pair.checked.hits["/hb"] == 1
    assert pin_pair.checked.requests[0].headers["user-agent"] == "healthorch/1"
    assert pin_pair.decoy.accepted == 0


def test_a_canary_name_that_does_not_resolve_means_the_uplink_is_down(names, settings):
    names.set("gone.internal", [])
    settings.HEALTHORCH_CANARY_URL = "http://gone.internal/canary"

    assert watchdog.uplink_ok() is False
