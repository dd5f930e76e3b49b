"""The console in a real browser: the operator's dashboard, creating a monitor, seeing and
acknowledging its incident; a tenant cannot reach another tenant's objects; a viewer has no
write buttons and a forged POST from their session is refused."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.utils import timezone

from apps.console.demo.server import DemoTarget
from apps.incidents.models import Incident
from apps.monitors import engine
from apps.monitors.models import Monitor
from apps.tenants.models import Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

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


def test_an_operator_creates_a_monitor_sees_its_incident_and_acknowledges_it(
    page, live_server, admin_login, target
):
    org = OrganizationFactory(name="Acme", slug="acme")
    operator = UserFactory(is_staff=True, is_superuser=True)
    admin_login(page, operator)
    page.wait_for_url(f"{live_server.url}/admin/")
    assert page.locator("#console-dashboard h2").inner_text() == "Platform health"
    assert page.locator("#tile-queues").is_visible()

    page.goto(f"{live_server.url}/admin/monitors/monitor/add/")
    page.locator("#id_organization").locator("xpath=..").locator(".select2-selection").click()
    page.locator(".select2-search__field").fill("Acme")
    page.locator(".select2-results__option", has_text="Acme").click()
    page.fill("#id_name", "checkout")
    page.fill("#id_slug", "checkout")
    page.select_option("#id_kind", "http")
    page.fill("#id_cfg_http_url", f"{target.url}/s/checkout")
    page.fill("#id_failure_threshold", "1")
    page.click("input[name=_save]")
    assert "was added successfully" in page.locator(".messagelist").inner_text()
    monitor = Monitor.objects.get(organization=org, slug="checkout")

    # The target fails; the engine checks the monitor as a worker would (in another thread:
    # Playwright's event loop runs in this one, and the engine runs its own).
    target.scenarios.set_mode("checkout", "down")
    with ThreadPoolExecutor(1) as pool:
        pool.submit(_check, monitor.pk).result(timeout=30)
    incident = Incident.objects.get(monitor=monitor)

    page.goto(f"{live_server.url}/admin/")
    assert page.locator("#tile-monitors dd.bad").first.inner_text() == "1"  # one down
    page.goto(f"{live_server.url}/admin/incidents/incident/")
    row = page.locator("#result_list tbody tr", has_text=incident.title)
    assert "triggered" in row.inner_text().lower()
    row.locator("input.action-select").check()
    page.select_option("select[name=action]", "acknowledge")
    page.click("button[name=index]")
    # Every write action asks first, naming what it will do; nothing has changed yet.
    assert "Acknowledge 1 incident(s)?" in page.locator("#content").inner_text()
    incident.refresh_from_db()
    assert incident.status == "triggered"
    page.click("input[type=submit][value^='Yes']")
    assert "1 incident(s) updated" in page.locator(".messagelist").inner_text()
    incident.refresh_from_db()
    assert incident.status == "acknowledged"
    assert incident.acknowledged_by == operator


def test_a_tenant_cannot_reach_another_tenants_objects_by_url(page, live_server, admin_login):
    acme, globex = OrganizationFactory(name="Acme"), OrganizationFactory(name="Globex")
    owner = MembershipFactory(organization=acme, role=Role.OWNER).user
    theirs = Monitor.objects.create(
        organization=globex, name="globex-secret", slug="globex-secret", kind="http", config={}
    )
    admin_login(page, owner)
    page.wait_for_url(f"{live_server.url}/admin/")
    assert page.locator("#console-dashboard h2").inner_text() == "Your organization"
    assert page.locator("#tile-queues").count() == 0
    for path in (
        f"/admin/monitors/monitor/{theirs.pk}/change/",
        f"/admin/tenants/organization/{globex.pk}/change/",
    ):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 404, path
    page.goto(f"{live_server.url}/admin/monitors/monitor/")
    assert "globex-secret" not in page.content()


def test_a_viewer_has_no_write_buttons_and_a_forged_post_is_refused(page, live_server, admin_login):
    from apps.incidents.models import MaintenanceWindow

    acme = OrganizationFactory(name="Acme")
    viewer = MembershipFactory(organization=acme, role=Role.VIEWER).user
    now = timezone.now()
    window = MaintenanceWindow.objects.create(
        organization=acme, name="deploy", starts_at=now, ends_at=now
    )
    admin_login(page, viewer)
    page.wait_for_url(f"{live_server.url}/admin/")
    url = f"{live_server.url}/admin/incidents/maintenancewindow/{window.pk}/change/"
    page.goto(url)
    assert page.locator("input[name=_save]").count() == 0
    assert page.locator("a.deletelink").count() == 0
    page.goto(f"{live_server.url}/admin/incidents/maintenancewindow/")
    assert page.locator("a.addlink").count() == 0

    # The same session forges the form the viewer was not given.
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    forged = page.request.post(
        url,
        form={"csrfmiddlewaretoken": csrf, "name": "hacked", "organization": str(acme.pk)},
        headers={"Referer": url},
    )
    assert forged.status == 403
    window.refresh_from_db()
    assert window.name == "deploy"


def test_a_member_of_two_organizations_switches_between_them_in_the_header(
    page, live_server, admin_login
):
    acme, globex = OrganizationFactory(name="Acme"), OrganizationFactory(name="Globex")
    member = MembershipFactory(organization=acme, role=Role.MEMBER).user
    MembershipFactory(organization=globex, user=member, role=Role.VIEWER)
    for org, name in ((acme, "acme-api"), (globex, "globex-api")):
        Monitor.objects.create(organization=org, name=name, slug=name, kind="http", config={})
    admin_login(page, member)
    page.wait_for_url(f"{live_server.url}/admin/")
    page.goto(f"{live_server.url}/admin/monitors/monitor/")
    assert page.locator("#result_list", has_text="acme-api").count() == 1
    assert page.locator("#result_list", has_text="globex-api").count() == 1
    with page.expect_navigation():
        page.select_option("#org-switch-select", label="Globex")
    assert page.url == f"{live_server.url}/admin/monitors/monitor/"
    listing = page.locator("#result_list").inner_text()
    assert "globex-api" in listing
    assert "acme-api" not in listing
