"""The outbound guard (apps.core.outbound) against real servers on 127.0.0.1; names resolve
through `tests/core/names.py` (why: see there). No database."""

from __future__ import annotations

import re
import socket

import pytest
import requests
import trustme

from apps.core import outbound, ssrf
from apps.core.plugins import validate_target_url
from tests.core.names import PUBLIC
from tests.monitors.targets import issue_cert, serve_http, serve_https, serve_tcp

TENANT_STRICT = outbound.Guard(allow_private=False)
TENANT_ALLOWED = outbound.Guard(allow_private=True)


@pytest.fixture
def listener():
    """Records whether any connection arrived on 127.0.0.1."""
    with serve_tcp() as target:
        yield target


def test_the_connection_goes_to_the_address_that_was_checked(names, pin_pair):
    names.set("pin.test", "127.0.0.1", "127.0.0.2")
    pin_pair.checked.route("/in", body="checked")

    with outbound.request("GET", f"http://pin.test:{pin_pair.port}/in", guard=TENANT_ALLOWED) as r:
        assert r.status_code == 200
        assert outbound.read_capped(r, 100) == b"checked"

    assert names.asked["pin.test"] == 1
    assert pin_pair.decoy.accepted == 0
    [seen] = pin_pair.checked.requests
    assert seen.headers["host"] == f"pin.test:{pin_pair.port}"
    assert seen.headers["user-agent"] == outbound.USER_AGENT


def test_tls_to_a_pinned_address_uses_the_name_for_sni_and_the_certificate(names, tmp_path):
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    names.set("tls.test", "127.0.0.1")
    with serve_https(ca, issue_cert(ca, "tls.test")) as target:
        target.route("/in")
        url = f"https://tls.test:{target.port}/in"

        with outbound.request("GET", url, guard=TENANT_ALLOWED, verify=str(bundle)) as r:
            assert r.status_code == 200

        assert target.server_names == ["tls.test"]
        assert target.requests[0].headers["host"] == f"tls.test:{target.port}"

    # The certificate is checked against the name, not the address connected to.
    with serve_https(ca, issue_cert(ca, "other.test")) as target:
        target.route("/in")
        with pytest.raises(requests.exceptions.SSLError):
            outbound.request(
                "GET",
                f"https://tls.test:{target.port}/in",
                guard=TENANT_ALLOWED,
                verify=str(bundle),
            )
        assert target.requests == []


@pytest.mark.parametrize("answer", ["127.0.0.1", "10.0.0.5", "169.254.169.254", "::1"])
def test_a_name_rebound_inside_is_refused_before_any_byte_leaves(names, listener, answer, settings):
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = False
    names.set("rebind.test", PUBLIC, answer)
    url = f"http://rebind.test:{listener.port}/"
    # Saved while it answered a public address (saving checks literals and loopback names).
    assert validate_target_url(url) == url
    assert socket.getaddrinfo("rebind.test", 80)[0][4][0] == PUBLIC

    with pytest.raises(ssrf.BlockedTarget, match="private or reserved"):
        outbound.request("GET", url, guard=TENANT_STRICT)

    assert listener.accepted == 0


def test_an_answer_with_one_internal_address_is_refused_whole(names, loopback_stand_in, listener):
    names.set("mixed.test", [loopback_stand_in, "127.0.0.1"])

    with pytest.raises(ssrf.BlockedTarget, match=re.escape("(127.0.0.1)")):
        outbound.request("GET", f"http://mixed.test:{listener.port}/", guard=TENANT_STRICT)

    assert listener.accepted == 0


@pytest.mark.parametrize("to", ["literal", "name", "metadata", "localhost"])
def test_each_redirect_hop_is_checked_before_connecting(names, loopback_stand_in, listener, to):
    names.set("inside.test", "127.0.0.1")
    location = {
        "literal": f"http://127.0.0.1:{listener.port}/",
        "name": f"http://inside.test:{listener.port}/",
        "metadata": "http://169.254.169.254/latest/meta-data/",
        "localhost": f"http://localhost:{listener.port}/",
    }[to]
    with serve_http(host=loopback_stand_in) as first:
        url = first.route("/", redirect_to=location)

        with pytest.raises(ssrf.BlockedTarget):
            outbound.request("GET", url, guard=TENANT_STRICT, max_redirects=5)

        assert first.hits["/"] == 1
    assert listener.accepted == 0


def test_redirects_are_followed_only_when_asked_and_each_hop_is_pinned(names, pin_pair):
    names.set("next.test", "127.0.0.1", "127.0.0.2")
    pin_pair.checked.route("/end", body="end")
    with serve_http() as first:
        url = first.route("/", redirect_to=f"http://next.test:{pin_pair.port}/end")

        with outbound.request("GET", url, guard=TENANT_ALLOWED) as unfollowed:
            assert unfollowed.status_code == 302
        assert pin_pair.checked.hits["/end"] == 0

        with outbound.request("GET", url, guard=TENANT_ALLOWED, max_redirects=3) as followed:
            assert followed.status_code == 200
    assert pin_pair.checked.hits["/end"] == 1
    assert pin_pair.decoy.accepted == 0


def test_the_operator_guard_reaches_internal_addresses_the_tenant_guard_refuses(names, pin_pair):
    # The refused request asks once, the allowed one once; a third lookup would go elsewhere.
    names.set("internal.test", "127.0.0.1", "127.0.0.1", "127.0.0.2")
    pin_pair.checked.route("/")
    url = f"http://internal.test:{pin_pair.port}/"

    with pytest.raises(ssrf.BlockedTarget):
        outbound.request("GET", url, guard=TENANT_STRICT)
    with outbound.request("GET", url, guard=outbound.Guard.for_operator()) as r:
        assert r.status_code == 200
    assert pin_pair.decoy.accepted == 0


def test_the_tenant_guard_follows_the_private_targets_setting(settings):
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = False
    assert outbound.Guard.for_tenant() == TENANT_STRICT
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = True
    assert outbound.Guard.for_tenant() == TENANT_ALLOWED


def test_proxies_from_the_environment_are_ignored(names, pin_pair, monkeypatch):
    # A proxy would resolve the name itself, out of the guard's sight.
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{pin_pair.port}")
    monkeypatch.setenv("NO_PROXY", "")
    names.set("direct.test", "127.0.0.1")
    pin_pair.checked.route("/direct")

    with outbound.request(
        "GET", f"http://direct.test:{pin_pair.port}/direct", guard=TENANT_ALLOWED
    ):
        pass

    [seen] = pin_pair.checked.requests
    assert seen.path == "/direct"  # a proxied request would carry the absolute URL


def test_a_body_is_read_only_up_to_the_cap(names, pin_pair):
    names.set("big.test", "127.0.0.1")
    pin_pair.checked.route("/big", body=b"x" * 200_000)

    with outbound.request("GET", f"http://big.test:{pin_pair.port}/big", guard=TENANT_ALLOWED) as r:
        assert outbound.read_capped(r, 1000) == b"x" * 1000


# --- pinned lookups (clients that resolve by themselves) -------------------------------------


def test_pinned_lookups_answer_the_first_vetted_address_for_the_whole_block(names, pin_pair):
    names.set("lib.test", "127.0.0.1", "127.0.0.2")
    pin_pair.checked.route("/")

    with outbound.pinned_lookups(TENANT_ALLOWED, ("lib.test", 80)) as scope:
        # A client that resolves by itself (plain requests here) gets the vetted answer.
        assert requests.get(f"http://lib.test:{pin_pair.port}/", timeout=5).status_code == 200
        assert socket.getaddrinfo("lib.test", 443)[0][4] == ("127.0.0.1", 443)

    assert scope.refused == []
    assert names.asked["lib.test"] == 1
    assert pin_pair.decoy.accepted == 0
    # Outside the block, lookups are the system's again.
    assert socket.getaddrinfo("lib.test", 80)[0][4][0] == "127.0.0.2"


def test_pinned_lookups_refuse_internal_names_and_literals_a_client_asks_for(names, listener):
    names.set("inside.test", "127.0.0.1")

    with outbound.pinned_lookups(TENANT_STRICT) as scope:
        for host in ("inside.test", "127.0.0.1", "169.254.169.254"):
            with pytest.raises(requests.ConnectionError):
                requests.get(f"http://{host}:{listener.port}/", timeout=5)

    assert len(scope.refused) == 3
    assert listener.accepted == 0


def test_pinned_lookups_refuse_a_blocked_host_on_entry(names):
    names.set("rebind.test", "10.0.0.5")

    with (
        pytest.raises(ssrf.BlockedTarget),
        outbound.pinned_lookups(TENANT_STRICT, ("rebind.test", 443)),
    ):
        pytest.fail("the block must not run")
