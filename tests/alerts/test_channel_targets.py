"""Where alert channels may connect: the outbound guard for webhooks and every Apprise scheme
that carries a host. Real listeners on 127.0.0.1 record that no connection arrived; names
resolve through the table in tests/core/names.py (why: see there)."""

from __future__ import annotations

import itertools
import logging
import re
import socket
from collections.abc import Iterator

import apprise
import pytest
from apprise.manager_plugins import NotificationManager
from rest_framework.exceptions import ValidationError

from apps.alerts.channels import DeliveryError, transport_for
from apps.alerts.channels.apprise import AppriseTransport, scheme_names_a_host, url_host
from apps.alerts.channels.webhook import WebhookTransport
from tests.alerts.test_channels import message
from tests.core.names import PUBLIC
from tests.monitors.targets import serve_tcp

SECRET = "s3cret-s3cret-s3cret-s3cret"
CHANNELS = "/api/v1/channels/"


@pytest.fixture
def listener() -> Iterator:
    with serve_tcp() as target:
        yield target


# --- webhook ----------------------------------------------------------------------------------


def test_a_webhook_name_rebound_to_loopback_is_refused_before_any_byte_leaves(
    names, listener, settings
):
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = False
    names.set("hooks.test", PUBLIC, "127.0.0.1")
    config = WebhookTransport.clean_config(
        {"url": f"http://hooks.test:{listener.port}/hook", "secret": SECRET}
    )
    # Saving checks literals and loopback names only; this was the name's answer then.
    assert socket.getaddrinfo("hooks.test", 80)[0][4][0] == PUBLIC

    with pytest.raises(DeliveryError, match="blocked") as caught:
        transport_for("webhook", config).notify(message())

    assert caught.value.permanent
    assert listener.accepted == 0


def test_a_webhook_connects_to_the_address_it_checked(names, pin_pair):
    names.set("hooks.test", "127.0.0.1", "127.0.0.2")
    pin_pair.checked.route("/hook")
    url = f"http://hooks.test:{pin_pair.port}/hook"

    details = transport_for("webhook", {"url": url, "secret": SECRET}).notify(message())

    assert details["status_code"] == 200
    [seen] = pin_pair.checked.requests
    assert seen.headers["host"] == f"hooks.test:{pin_pair.port}"
    assert seen.headers["user-agent"] == "healthorch-webhook/1"
    assert pin_pair.decoy.accepted == 0
    assert names.asked["hooks.test"] == 1


# --- apprise: the table comes from Apprise's own registry ----------------------------------------

# Values tried for a template's other tokens (tokens, ids, topics, phone numbers...).
FILLERS = ("abcd1234", "a" * 64, "42", "15551234567")
# Schemes whose tokens no filler satisfies: an example in Apprise's own documented shape.
EXAMPLES = {
    "trigv": "{schema}://trgv_abcd1234_" + "a" * 32 + "@{host}:{port}/channel",
    "trigvs": "{schema}://trgv_abcd1234_" + "a" * 32 + "@{host}:{port}/channel",
}
INTERNAL_HOSTS = {"loopback": "127.0.0.1", "private": "10.0.0.5", "metadata": "169.254.169.254"}


def _fill(scheme: str, template: str, host: str, port: int, filler: str) -> str | None:
    tokens = NotificationManager()[scheme].template_tokens
    url = template
    for token in re.findall(r"{(\w+)}", template):
        spec = tokens.get(token, {})
        if token == "schema":
            value = scheme
        elif token == "host":
            value = host
        elif token == "port":
            value = str(port)
        elif str(spec.get("type", "")).startswith("choice"):
            value = str(spec["values"][0])
        elif spec.get("type") == "int":
            value = str(spec.get("min") or 1)
        elif spec.get("regex"):
            pattern = re.compile(spec["regex"][0], re.I if "i" in spec["regex"][1:2] else 0)
            value = next((c for c in (filler, *FILLERS) if pattern.match(c)), None)
            if value is None:
                return None
        else:
            value = filler
        url = url.replace(f"{{{token}}}", value, 1)
    return url


def example_url(scheme: str, host: str, port: int) -> str | None:
    """A URL of `scheme` whose host Apprise parses as `host`, built from the plugin's
    templates (those with a port first): one Apprise accepts whole if there is one."""
    if scheme in EXAMPLES:
        return EXAMPLES[scheme].format(schema=scheme, host=host, port=port)
    templates = NotificationManager()[scheme].templates
    ordered = sorted((t for t in templates if "{host}" in t), key=lambda t: "{port}" not in t)
    parsed = []
    for template, filler in itertools.product(ordered, FILLERS):
        url = _fill(scheme, template, host, port, filler)
        if url and (url_host(url) or ("",))[0] == host:
            if loadable(url):
                return url
            parsed.append(url)
    return parsed[0] if parsed else None


def loadable(url: str) -> bool:
    return apprise.Apprise.instantiate(url, suppress_exceptions=True) is not None


HOST_SCHEMES = sorted(
    scheme
    for scheme in NotificationManager().schemas()
    if scheme_names_a_host(scheme) and NotificationManager()[scheme].enabled
)


def test_the_table_covers_the_self_hostable_services_apprise_knows():
    # The registry, not a list here, says which schemes carry a host: these must be among them.
    assert {"json", "xml", "form", "ntfy", "gotify", "mmost", "apprise", "mailto"} <= set(
        HOST_SCHEMES
    )
    assert "slack" not in HOST_SCHEMES  # its "host" position is a token, not a server
    missing = [s for s in HOST_SCHEMES if example_url(s, "hooks.example.com", 8080) is None]
    assert missing == [], f"no example URL could be built for {missing}: add one to EXAMPLES"


@pytest.fixture
def quiet_apprise():
    # Apprise logs every refused URL; hundreds of rows would bury a failure's output.
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


@pytest.mark.django_db
@pytest.mark.parametrize("scheme", HOST_SCHEMES)
def test_an_apprise_url_towards_an_internal_host_is_a_400_naming_the_field(
    client_for, owner, pro, settings, scheme, quiet_apprise
):
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = False
    client = client_for(owner)
    for label, host in INTERNAL_HOSTS.items():
        url = example_url(scheme, host, 8080)
        body = {"kind": "apprise", "name": f"{scheme} {label}", "config": {"url": url}}

        response = client.post(CHANNELS, body, format="json")

        assert response.status_code == 400, (label, response.json())
        assert "config" in response.json()["fields"], label
        assert "Target refused" in str(response.json()["fields"]["config"]), label
    # The same URL with a public host is a valid channel (so the refusal is about the host),
    # unless Apprise cannot load the scheme here at all (a missing optional library).
    public = example_url(scheme, "hooks.example.com", 8080)
    if loadable(public):
        accepted = client.post(
            CHANNELS, {"kind": "apprise", "name": scheme, "config": {"url": public}}, format="json"
        )
        assert accepted.status_code == 201, accepted.json()


SEND_CASES = [*INTERNAL_HOSTS.items(), ("rebound name", "rebind.test")]


@pytest.mark.parametrize("scheme", HOST_SCHEMES)
def test_an_apprise_delivery_towards_an_internal_host_is_refused_before_any_byte_leaves(
    names, listener, settings, scheme, quiet_apprise
):
    names.set("rebind.test", "127.0.0.1")
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = True  # saved while allowed (or rebound since)
    stored = []
    for label, host in SEND_CASES:
        url = example_url(scheme, host, listener.port)
        if loadable(url):
            stored.append(
                (label, transport_for("apprise", AppriseTransport.clean_config({"url": url})))
            )
        else:
            # Apprise itself refuses this host for this scheme (an IP as a mail domain, a
            # missing optional library): no channel of it can exist, so nothing can be sent.
            with pytest.raises(ValidationError):
                AppriseTransport.clean_config({"url": url})
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = False

    for label, transport in stored:
        with pytest.raises(DeliveryError, match="target refused") as caught:
            transport.notify(message())
        assert caught.value.permanent, label

    assert listener.accepted == 0


def test_an_apprise_delivery_connects_to_the_address_it_checked(names, pin_pair):
    names.set("notify.test", "127.0.0.1", "127.0.0.2")
    pin_pair.checked.route("/notify")

    transport_for("apprise", {"url": f"json://notify.test:{pin_pair.port}/notify"}).notify(
        message()
    )

    [seen] = pin_pair.checked.requests
    assert seen.headers["host"] == f"notify.test:{pin_pair.port}"
    assert pin_pair.decoy.accepted == 0
    assert names.asked["notify.test"] == 1


def test_an_apprise_plugin_redirected_inside_is_refused(
    names, loopback_stand_in, listener, settings
):
    # Apprise's plugins follow redirects themselves; every lookup they make is vetted.
    from tests.monitors.targets import serve_http

    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = False
    with serve_http(host=loopback_stand_in) as first:
        url = first.route("/notify", status=307, redirect_to=f"http://127.0.0.1:{listener.port}/")
        transport = transport_for("apprise", {"url": url.replace("http://", "json://")})

        with pytest.raises(DeliveryError, match="target refused") as caught:
            transport.notify(message())

        assert first.hits["/notify"] == 1
    assert caught.value.permanent
    assert listener.accepted == 0


def test_a_host_named_outside_the_host_position_is_refused_when_the_plugin_looks_it_up(
    listener, settings, quiet_apprise
):
    # mailto's SMTP server is a query argument; the save-time check sees only the domain,
    # but the plugin's own lookup of the server happens inside the pinned lookups.
    url = f"mailto://ops:pw@example.com?smtp=127.0.0.1&port={listener.port}&to=a@example.com"
    transport = transport_for("apprise", AppriseTransport.clean_config({"url": url}))
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = False

    with pytest.raises(DeliveryError, match="target refused") as caught:
        transport.notify(message())

    assert caught.value.permanent
    assert listener.accepted == 0


def test_a_tenant_header_cannot_replace_the_webhook_user_agent(names, pin_pair):
    names.set("hooks.test", "127.0.0.1")
    pin_pair.checked.route("/hook")
    config = {
        "url": f"http://hooks.test:{pin_pair.port}/hook",
        "secret": SECRET,
        "headers": {"User-Agent": "spoofed/1", "X-Team": "ops"},
    }

    transport_for("webhook", config).notify(message())

    [seen] = pin_pair.checked.requests
    assert (seen.headers["user-agent"], seen.headers["x-team"]) == ("healthorch-webhook/1", "ops")
