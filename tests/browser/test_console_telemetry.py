"""Telemetry in the console, in a real browser: the logs page's filters and pages, its Live
toggle adding a line sent after the page was drawn (the console's tail, server-sent events),
a source's chart drawn within the page at 1440 and 390 px, and no serious accessibility
violation on either page (axe-core). Screenshots at 1440 and 390 px."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.monitors.models import MetricSample
from apps.telemetry import services
from apps.tenants.models import Role
from tests.browser.test_console_accessibility import serious_violations
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _line(message, source="api", level="info", **extra):
    return {"source": source, "level": level, "message": message, **extra}


@pytest.fixture
def acme():
    return OrganizationFactory(name="Acme", slug="acme")


@pytest.fixture
def viewer(acme):
    return MembershipFactory(organization=acme, role=Role.VIEWER).user


def _signed_in(page, live_server, admin_login, user):
    admin_login(page, user)
    page.wait_for_url(f"{live_server.url}/admin/")


def test_the_logs_filters_narrow_the_list_and_live_adds_new_lines(
    page, live_server, admin_login, acme, viewer, settings, shoot
):
    settings.TELEMETRY_TAIL_SECONDS = 3
    now = timezone.now()
    services.logs_ingest(
        org=acme,
        payload={
            "logs": [
                _line(
                    "card declined for order 7",
                    source="billing",
                    level="error",
                    ts=(now - timedelta(minutes=3)).isoformat(),
                    attributes={"order": 7},
                ),
                _line(
                    "order 8 paid", source="billing", ts=(now - timedelta(minutes=2)).isoformat()
                ),
                _line("GET / 200", source="web", ts=(now - timedelta(minutes=1)).isoformat()),
            ]
        },
    )
    _signed_in(page, live_server, admin_login, viewer)
    page.goto(f"{live_server.url}/admin/telemetry/{acme.pk}/logs/")
    rows = page.locator("#log-lines tbody tr.log-line")
    assert rows.count() == 3
    assert rows.first.locator("td.message").inner_text() == "GET / 200"

    page.get_by_label("Source").fill("billing")
    page.get_by_label("error").check()
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**source=billing**")
    assert rows.count() == 1
    row = rows.first
    assert "card declined" in row.inner_text()
    row.locator("summary").click()
    assert row.locator("dd").first.inner_text() == "7"
    assert serious_violations(page) == []
    shoot(page, "logs-filtered")

    # Live: a line sent now (matching the filters) appears on top without a reload; one that
    # does not match never does.
    page.get_by_role("button", name="Live").click()
    page.wait_for_selector("#log-live-toggle[aria-pressed=true]")
    page.wait_for_timeout(300)
    services.logs_ingest(
        org=acme,
        payload={
            "logs": [
                _line("ignored", source="web", level="error"),
                _line("card declined again", source="billing", level="error"),
            ]
        },
    )
    page.wait_for_selector("#log-lines tbody tr.log-line >> text=card declined again")
    assert rows.first.locator("td.message").inner_text().startswith("card declined again")
    assert page.locator("#log-lines >> text=ignored").count() == 0


def test_a_sources_chart_is_drawn_within_the_page_at_both_widths(
    page, live_server, admin_login, acme, viewer, shoot
):
    end = timezone.now() - timedelta(minutes=1)
    MetricSample.objects.bulk_create(
        MetricSample(
            organization=acme,
            source="billing",
            name="queue_depth",
            value=float(i % 30),
            ts=end - timedelta(minutes=i),
        )
        for i in range(24 * 60)
    )
    _signed_in(page, live_server, admin_login, viewer)
    page.goto(f"{live_server.url}/admin/telemetry/sources/")
    page.get_by_role("link", name="billing", exact=True).click()
    page.wait_for_url("**/sources/billing/")
    chart = page.locator("svg.series-chart")
    assert chart.count() == 1
    assert chart.locator("polyline.avg").count() >= 1
    assert chart.locator("polygon.band").count() >= 1
    assert serious_violations(page) == []
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        box = chart.bounding_box()
        assert box["width"] > 200
        assert box["x"] + box["width"] <= width
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width + 1, (width, scroll)
    page.get_by_role("link", name="7 d").click()
    page.wait_for_url("**range=7d**")
    assert page.locator("a[aria-current=page]").inner_text() == "7 d"
    shoot(page, "source-7d")
