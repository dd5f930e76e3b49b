"""The console's dashboard in a real browser at the widths people use: names on one line, the
charts drawn, the list under it, and figures that refresh without a reload."""

from __future__ import annotations

import pytest

from apps.monitors.models import Monitor
from apps.tenants.models import Role
from tests.console import support
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def acme():
    org = OrganizationFactory(name="Acme Corporation", slug="acme")
    down = support.monitors(org, 2, status="down", prefix="checkout-api-eu-west")
    up = support.monitors(org, 6, status="up", prefix="marketing-site")
    for monitor in [*down, *up]:
        support.rollups(monitor, down_days=2)
    return org


@pytest.mark.parametrize("width", [1280, 1440, 1920, 390])
def test_the_dashboard_keeps_names_on_one_line_at_every_width(
    page, live_server, admin_login, acme, shoot, width
):
    owner = MembershipFactory(organization=acme, role=Role.OWNER).user
    admin_login(page, owner)
    page.wait_for_url(f"{live_server.url}/admin/")
    page.set_viewport_size({"width": width, "height": 900})
    table = page.locator("#monitor-charts")
    rows = table.locator("tbody tr")
    assert rows.count() == 8
    # An inline element that wraps is drawn as several boxes, one per line.
    lines = page.evaluate(
        "[...document.querySelectorAll('#monitor-charts td.name a, #monitor-charts .pill')]"
        ".map(el => el.getClientRects().length)"
    )
    assert lines == [1] * 16, f"wrapped names or statuses at {width} px: {lines}"
    assert table.locator("svg.spark").count() == 8
    assert table.locator("svg.uptime").count() == 8
    if width >= 1280:
        # The figures take the page's width (Django's index narrows it to 600 px).
        assert table.bounding_box()["width"] > 0.6 * width
        # and no column is cut at the right edge
        right = page.evaluate("document.documentElement.scrollWidth")
        assert right <= width
    shoot(page, f"dashboard-{width}", widths=(width,))


def test_the_dashboard_refreshes_its_figures_without_a_reload(page, live_server, admin_login, acme):
    owner = MembershipFactory(organization=acme, role=Role.OWNER).user
    admin_login(page, owner)
    page.wait_for_url(f"{live_server.url}/admin/")
    assert page.locator("#tile-monitors dd.bad").inner_text() == "2"
    page.evaluate("window.__same_page = true")
    Monitor.objects.filter(organization=acme, status="up").update(status="down")
    page.evaluate("document.getElementById('console-live').consoleRefresh()")
    page.wait_for_function(
        "document.querySelector('#tile-monitors dd.bad').innerText === '8'", timeout=10_000
    )
    assert page.evaluate("window.__same_page") is True  # no reload: the window kept its state
