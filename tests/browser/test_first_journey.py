"""A stranger becomes a customer and handles a first incident, in one journey in a real browser:
sign up on the front page, verify the email (the link read from a real SMTP server), add a
first monitor in the console, check it now against a local target that fails, open the
incident it raised, acknowledge it and resolve it. Screenshots of every step at 1440 and
390 px under artifacts/browser/screens/."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from apps.incidents.models import Incident, IncidentStatus
from apps.monitors.models import Monitor
from tests.accounts.helpers import link_in, messages_to
from tests.monitors.targets import serve_http

pytestmark = pytest.mark.django_db(transaction=True)
PASSWORD = "a long and unusual pass phrase 7"


@pytest.fixture
def failing_service():
    """The customer's service: a real HTTP server on 127.0.0.1 whose health check fails."""
    with serve_http() as target:
        yield target


def test_sign_up_verify_first_monitor_its_incident_acknowledge_resolve(
    page, live_server, mailbox, failing_service, shoot
):
    url = failing_service.route("/health", status=503, body="database unreachable")

    page.goto(f"{live_server.url}/")
    shoot(page, "1-front-page")
    page.get_by_role("link", name="Sign up free", exact=True).click()
    page.fill("#id_email", "grace@example.test")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.fill("#id_organization", "Compilers Ltd")
    page.locator("form button[type=submit]").click()
    page.wait_for_url(f"{live_server.url}/accounts/confirm-email/")
    shoot(page, "2-verification-sent")

    (message,) = messages_to(mailbox, "grace@example.test")
    page.goto(live_server.url + urlparse(link_in(message, "/accounts/confirm-email/")).path)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(f"{live_server.url}/admin/")
    shoot(page, "3-console-first-visit")

    page.goto(f"{live_server.url}/admin/monitors/monitor/add/")
    page.select_option("#id_kind", "http")
    page.fill("#id_name", "api health")
    page.fill("#id_cfg_http_url", url)
    page.fill("#id_failure_threshold", "1")
    shoot(page, "4-first-monitor")
    page.click("input[name=_continue]")
    assert "was added successfully" in page.locator(".messagelist").inner_text()
    monitor = Monitor.objects.get(name="api health")
    assert monitor.organization.name == "Compilers Ltd"

    page.click("#check-now-button")
    result = page.locator("#check-now-result .console-result")
    result.wait_for()
    assert result.get_attribute("data-outcome") == "down"
    assert failing_service.hits["/health"] == 1
    shoot(page, "5-checked-down")

    incident = Incident.objects.get(monitor=monitor)
    page.goto(f"{live_server.url}/admin/incidents/incident/")
    page.locator("#result_list a", has_text=incident.title).click()
    page.wait_for_url(f"**/admin/incidents/incident/{incident.pk}/change/")
    shoot(page, "6-incident")
    page.click("#incident-actions input[value=Acknowledge]")
    assert "Acknowledged: escalation stopped." in page.locator(".messagelist").inner_text()
    shoot(page, "7-acknowledged")
    page.click("#incident-actions input[value=Resolve]")
    assert "Resolved." in page.locator(".messagelist").inner_text()
    shoot(page, "8-resolved")

    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    assert incident.acknowledged_by.email == incident.resolved_by.email == "grace@example.test"
