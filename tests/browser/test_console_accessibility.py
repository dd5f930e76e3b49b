"""Accessibility of the pages a stranger and a customer meet first, checked by axe-core in a
real browser: no serious or critical violation of WCAG 2 A/AA rules on the front page, the
sign-in and sign-up pages, and the console's dashboard, monitor form, an incident's page and
the Billing page.

axe-core is vendored under tests/browser/vendor/ (from the npm package, see its README) and
injected into the page by Playwright: nothing is fetched from a CDN."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.tenants.models import Role
from tests.console import support
from tests.factories import MembershipFactory, OrganizationFactory, make_monitor

pytestmark = pytest.mark.django_db(transaction=True)

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def serious_violations(page) -> list[dict]:
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})
            .then(r => r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.slice(0, 5).map(n => n.target.join(' '))})))""",
        RULES,
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


@pytest.fixture
def acme():
    org = OrganizationFactory(name="Acme", slug="acme")
    for monitor in support.monitors(org, 3, status="down", prefix="checkout"):
        support.rollups(monitor, down_days=1)
    return org


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/accounts/signup/"])
def test_the_public_page_has_no_serious_accessibility_violation(page, live_server, path):
    from apps.plans.services import plans_ensure_defaults

    plans_ensure_defaults()  # the front page's price list
    page.goto(f"{live_server.url}{path}")
    assert page.locator("main").count() == 1
    assert serious_violations(page) == []


@pytest.mark.parametrize(
    "path",
    ["/admin/", "/admin/monitors/monitor/add/", "incident", "/admin/billing/"],
    ids=["dashboard", "monitor-form", "incident", "billing"],
)
def test_the_page_has_no_serious_accessibility_violation(
    page, live_server, admin_login, acme, path
):
    owner = MembershipFactory(organization=acme, role=Role.OWNER).user
    if path == "incident":
        monitor = make_monitor(acme, "api")
        path = f"/admin/incidents/incident/{support.incident(acme, monitor=monitor).pk}/change/"
    admin_login(page, owner)
    page.wait_for_url(f"{live_server.url}/admin/")
    page.goto(f"{live_server.url}{path}")
    assert serious_violations(page) == []
