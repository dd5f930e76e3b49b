"""A member's incident journey in a real browser: a monitor fails, its incident appears on the
dashboard and in the list, and the member acknowledges, notes and resolves it with the buttons
on the incident's page. Screenshots at 1440 and 390 px under artifacts/browser/screens/."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from apps.console.demo.server import DemoTarget
from apps.incidents.models import Incident
from apps.monitors import engine
from apps.tenants.models import Role
from tests.factories import MembershipFactory, OrganizationFactory, make_monitor

pytestmark = pytest.mark.django_db(transaction=True)


def _check(monitor_id) -> None:
    from django.db import connection

    try:
        engine.run_monitors([monitor_id])
    finally:
        connection.close()


@pytest.fixture
def target():
    t = DemoTarget(tls_port=None).start()
    yield t
    t.stop()


def test_a_member_acknowledges_and_resolves_an_incident_on_its_page(
    page, live_server, admin_login, target, shoot
):
    acme = OrganizationFactory(name="Acme", slug="acme")
    member = MembershipFactory(organization=acme, role=Role.MEMBER).user
    monitor = make_monitor(
        acme,
        "checkout",
        kind="http",
        config={"url": f"{target.url}/s/checkout"},
        failure_threshold=1,
    )
    target.scenarios.set_mode("checkout", "down")
    # The engine checks the monitor as a worker would, in another thread (Playwright's event
    # loop runs in this one, and the engine runs its own).
    with ThreadPoolExecutor(1) as pool:
        pool.submit(_check, monitor.pk).result(timeout=30)
    incident = Incident.objects.get(monitor=monitor)

    admin_login(page, member)
    page.wait_for_url(f"{live_server.url}/admin/")
    assert page.locator("#tile-incidents dd.bad").first.inner_text() == "1"
    shoot(page, "dashboard")

    page.goto(f"{live_server.url}/admin/incidents/incident/")
    page.locator("#result_list a", has_text=incident.title).click()
    page.wait_for_url(f"**/admin/incidents/incident/{incident.pk}/change/")
    content = page.locator("#content").inner_text()
    assert "Opened because the monitor was down" in content
    assert '"rule"' not in content  # no JSON on the page
    shoot(page, "incident-triggered")

    page.click("#incident-actions input[value=Acknowledge]")
    assert "Acknowledged: escalation stopped." in page.locator(".messagelist").inner_text()
    assert page.locator("#incident-actions input[value=Acknowledge]").count() == 0
    assert f"Acknowledged by {member.email}." in page.locator("#content").inner_text()

    page.fill("#incident-note", "The payment provider is down; waiting on them.")
    page.click("#incident-actions input[value='Add note']")
    assert "Note added to the timeline." in page.locator(".messagelist").inner_text()
    shoot(page, "incident-acknowledged")

    page.click("#incident-actions input[value=Resolve]")
    assert "Resolved." in page.locator(".messagelist").inner_text()
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert incident.acknowledged_by == member
    assert incident.resolved_by == member
    timeline = page.locator("#content").inner_text()
    assert f"Resolved by {member.email}." in timeline
    assert "The payment provider is down" in timeline
    assert page.locator("#incident-actions input[value=Resolve]").count() == 0
    shoot(page, "incident-resolved")
