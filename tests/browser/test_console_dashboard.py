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


@pytest.mark.parametrize(
    "path", ["/admin/monitors/monitor/", "/admin/incidents/incident/", "/admin/alerts/channel/"]
)
def test_a_list_never_cuts_its_right_hand_columns_at_1440(
    page, live_server, admin_login, acme, shoot, path
):
    from django.contrib.auth import get_user_model

    support.incident(acme, monitor=Monitor.objects.filter(organization=acme).first())
    support.notification(acme, status="dead")  # and a channel with it
    operator = get_user_model().objects.create_superuser("op@example.test", "op@example.test", "pw")
    admin_login(page, operator, password="pw")
    page.wait_for_url(f"{live_server.url}/admin/")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}{path}")
    # The page itself never scrolls sideways; a list wider than its box scrolls inside it.
    assert page.evaluate("document.documentElement.scrollWidth") <= 1440
    shoot(page, path.strip("/").replace("/", "-"), widths=(1440,))
    # Names stay on one line.
    lines = page.evaluate(
        "[...document.querySelectorAll('#result_list tbody th a')]"
        ".map(a => a.getClientRects().length)"
    )
    assert lines
    assert set(lines) == {1}
    # The last column can be reached: it is in view, or the list scrolls sideways to it.
    last = page.locator("#result_list thead th").last
    results = page.locator("#changelist .results")
    last.scroll_into_view_if_needed()
    box, area = last.bounding_box(), results.bounding_box()
    assert box["x"] + box["width"] <= area["x"] + area["width"] + 1
