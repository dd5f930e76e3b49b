"""The monitor form in a real browser: a member picks a kind and sees only its fields, types
the URL, adds tags as chips, is warned of a malformed assertion as it is typed, saves, and runs
"Check now" with the result shown on the page. Screenshots at 1440 and 390 px."""

from __future__ import annotations

import pytest

from apps.monitors.models import Monitor
from apps.tenants.models import Role
from tests.factories import MembershipFactory, OrganizationFactory
from tests.monitors.targets import serve_http

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def http_target():
    """A real HTTP server on 127.0.0.1 that counts the requests it gets."""
    with serve_http() as target:
        yield target


def test_a_member_adds_an_http_monitor_with_fields_and_checks_it_now(
    page, live_server, admin_login, http_target, shoot
):
    acme = OrganizationFactory(name="Acme", slug="acme")
    member = MembershipFactory(organization=acme, role=Role.MEMBER).user
    url = http_target.route("/health", body='{"status": "ok"}')
    admin_login(page, member)
    page.wait_for_url(f"{live_server.url}/admin/")

    page.goto(f"{live_server.url}/admin/monitors/monitor/add/")
    page.select_option("#id_kind", "tcp")
    assert page.locator("fieldset.kind-tcp").is_visible()
    assert not page.locator("fieldset.kind-http").is_visible()
    page.select_option("#id_kind", "http")
    assert page.locator("fieldset.kind-http").is_visible()
    assert not page.locator("fieldset.kind-tcp").is_visible()
    assert page.locator("textarea[name=config]").count() == 0  # no JSON box for a member

    page.fill("#id_name", "checkout health")
    page.fill("#id_cfg_http_url", url)
    page.fill("#id_cfg_http_assertions", "json.status ==")
    page.wait_for_timeout(100)
    assert "Line 1" in page.locator("#id_cfg_http_assertions-inline").inner_text()
    page.fill("#id_cfg_http_assertions", 'json.status == "ok"')
    assert page.locator("#id_cfg_http_assertions-inline").inner_text() == ""
    chip_entry = page.locator(".chips input[type=text]")
    for tag in ("prod", "eu"):
        chip_entry.fill(tag)
        chip_entry.press("Enter")
    assert page.locator(".chip").count() == 2
    shoot(page, "monitor-add")
    page.click("input[name=_continue]")
    assert "was added successfully" in page.locator(".messagelist").inner_text()

    monitor = Monitor.objects.get(organization=acme, name="checkout health")
    assert monitor.config["url"] == url
    assert monitor.config["assertions"] == ['json.status == "ok"']
    assert monitor.tags == ["prod", "eu"]
    assert page.locator(".chip").count() == 2  # drawn again from the stored tags

    page.click("#check-now-button")
    result = page.locator("#check-now-result .console-result")
    result.wait_for()
    assert result.get_attribute("data-outcome") == "up"
    assert "HTTP 200" in result.inner_text()
    assert http_target.hits["/health"] == 1
    shoot(page, "monitor-checked")
