"""A monitor's page in the console: per-kind fields instead of JSON boxes, and "Check now" with
its result on the page, through the monitors service (outbound guard, recorded, audited)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditEntry
from apps.monitors.models import CheckResult
from tests.console import support
from tests.factories import make_monitor
from tests.monitors.targets import serve_http

pytestmark = pytest.mark.django_db


@pytest.fixture
def http_target():
    """A real HTTP server on 127.0.0.1 that counts the requests it gets."""
    with serve_http() as target:
        yield target


def _check_now(client, monitor, *, fetch: bool = True):
    headers = {"HTTP_X_REQUESTED_WITH": "fetch"} if fetch else {}
    return client.post(f"/admin/monitors/monitor/{monitor.pk}/check-now/", **headers)


def test_a_member_checks_a_monitor_now_and_sees_the_result_on_the_page(org, member, http_target):
    monitor = make_monitor(org, "api", kind="http", config={"url": http_target.route("/health")})
    client = support.login(member)
    page = client.get(f"/admin/monitors/monitor/{monitor.pk}/change/").content.decode()
    assert 'id="check-now-button"' in page

    response = _check_now(client, monitor)

    assert response.status_code == 200
    fragment = response.content.decode()
    assert 'data-outcome="up"' in fragment
    assert "HTTP 200" in fragment
    assert http_target.hits["/health"] == 1
    assert CheckResult.objects.filter(monitor=monitor).count() == 1
    assert AuditEntry.objects.filter(action="monitor.checked", actor_user=member).exists()


def test_without_the_script_the_result_comes_back_as_a_message(org, member, http_target):
    monitor = make_monitor(org, "api", kind="http", config={"url": http_target.route("/health")})
    client = support.login(member)
    response = _check_now(client, monitor, fetch=False)
    assert response.status_code == 302
    messages = [str(m) for m in client.get(response["Location"]).context["messages"]]
    assert any(m.startswith("Checked: up, HTTP 200") for m in messages)


def test_the_outbound_guard_refuses_a_private_target_before_connecting(
    org, operator, http_target, settings
):
    monitor = make_monitor(org, "api", kind="http", config={"url": http_target.route("/")})
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = False

    response = _check_now(support.login(operator), monitor)

    assert 'data-outcome="down"' in response.content.decode()
    assert CheckResult.objects.get(monitor=monitor).error_class == "blocked"
    assert http_target.hits["/"] == 0  # refused before any connection


def test_a_paused_or_passive_monitor_is_not_checked(org, member):
    heartbeat = make_monitor(org, "cron", kind="heartbeat", config={"period_seconds": 60})
    client = support.login(member)
    page = client.get(f"/admin/monitors/monitor/{heartbeat.pk}/change/").content.decode()
    assert 'id="check-now-button"' not in page
    fragment = _check_now(client, heartbeat).content.decode()
    assert "Not checked" in fragment
    assert not CheckResult.objects.filter(monitor=heartbeat).exists()


def test_a_viewer_has_no_button_and_a_forged_post_is_refused(org, viewer):
    monitor = make_monitor(org, "api")
    client = support.login(viewer)
    page = client.get(f"/admin/monitors/monitor/{monitor.pk}/change/").content.decode()
    assert 'id="check-now-button"' not in page
    assert _check_now(client, monitor).status_code == 403
    assert client.get(f"/admin/monitors/monitor/{monitor.pk}/check-now/").status_code == 405
    assert not CheckResult.objects.filter(monitor=monitor).exists()


def test_another_organizations_monitor_is_404(org, outsider):
    monitor = make_monitor(org, "api")
    assert _check_now(support.login(outsider), monitor).status_code == 404
    assert not CheckResult.objects.filter(monitor=monitor).exists()


def test_the_page_shows_fields_for_the_monitors_kind_not_json(org, member):
    monitor = make_monitor(
        org,
        "api",
        kind="http",
        config={
            "url": "http://127.0.0.1:9/health",
            "expected_status": [200, "300-302"],
            "assertions": ['json.status == "ok"', "response_time < 500ms"],
        },
        tags=["prod", "eu"],
    )
    response = support.login(member).get(f"/admin/monitors/monitor/{monitor.pk}/change/")
    form = response.context["adminform"].form
    assert form["cfg_http_url"].value() == "http://127.0.0.1:9/health"
    assert form["cfg_http_expected_status"].value() == "200, 300-302"
    assert form["cfg_http_assertions"].value() == 'json.status == "ok"\nresponse_time < 500ms'
    assert form["tags"].value() == "prod, eu"
    assert "cfg_tcp_host" not in form.fields  # only the monitor's own kind
    page = response.content.decode()
    assert 'data-chips="1"' in page
    assert 'name="config"' not in page


def test_a_bad_assertion_is_refused_under_the_assertions_box(org, member):
    from tests.audit.conftest import form_data

    monitor = make_monitor(org, "api", kind="http", config={"url": "http://127.0.0.1:9/"})
    client = support.login(member)
    url = f"/admin/monitors/monitor/{monitor.pk}/change/"
    data = {**form_data(client.get(url)), "cfg_http_assertions": 'status ==\nbody contains "ok"'}
    response = client.post(url, data)
    assert response.status_code == 200
    [message] = response.context["adminform"].form.errors["cfg_http_assertions"]
    assert message.startswith("assertion 0:")
    monitor.refresh_from_db()
    assert "assertions" not in monitor.config


def test_tags_and_regions_save_as_lists(org, member, settings):
    from tests.audit.conftest import form_data

    monitor = make_monitor(org, "api", kind="http", config={"url": "http://127.0.0.1:9/"})
    client = support.login(member)
    url = f"/admin/monitors/monitor/{monitor.pk}/change/"
    data = {**form_data(client.get(url)), "tags": "prod, eu,  prod ,api"}
    assert client.post(url, data).status_code == 302
    monitor.refresh_from_db()
    assert monitor.tags == ["prod", "eu", "api"]
    assert monitor.regions == ["default"]


def test_the_page_costs_the_same_queries_with_many_results(org, member):
    monitor = make_monitor(org, "api")
    client = support.login(member)
    url = f"/admin/monitors/monitor/{monitor.pk}/change/"
    client.get(url)
    with CaptureQueriesContext(connection) as before:
        client.get(url)
    support.results(monitor, 50)
    with CaptureQueriesContext(connection) as after:
        client.get(url)
    assert len(after) == len(before)
