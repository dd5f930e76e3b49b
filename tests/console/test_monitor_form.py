"""Monitors in the console validate and save exactly as through the API: members with a
writing role add and edit them, a config the API refuses is refused here with the reason, the
plan's limits hold, viewers only read."""

from __future__ import annotations

import json

import pytest

from apps.audit.models import AuditEntry
from apps.monitors import services as monitor_services
from apps.monitors.models import Monitor
from tests.audit.conftest import form_data
from tests.conftest import console

pytestmark = pytest.mark.django_db


HTTP = {"name": "api", "kind": "http", "config": {"url": "http://127.0.0.1:9/health"}}


def _add_form(client, org, **fields) -> dict:
    data = form_data(client.get(f"/admin/monitors/monitor/add/?organization={org.pk}"))
    data.update(organization=str(org.pk), name="checkout", slug="checkout", kind="http")
    data.update(fields)
    return data


def test_a_member_adds_a_monitor_in_the_console_as_through_the_api(org, member):
    client = console(member)
    data = _add_form(client, org, cfg_http_url="http://127.0.0.1:9/checkout")

    response = client.post("/admin/monitors/monitor/add/", data)

    assert response.status_code == 302
    monitor = Monitor.objects.get(organization=org, slug="checkout")
    assert monitor.next_check_at is not None  # scheduled by the service
    entry = AuditEntry.objects.get(action="monitor.created", object_id=str(monitor.pk))
    assert entry.actor_user_id == member.pk


def test_a_config_the_api_refuses_is_refused_in_the_console_with_its_reason(org, member):
    client = console(member)
    data = _add_form(client, org, cfg_http_url="ftp://127.0.0.1/")

    response = client.post("/admin/monitors/monitor/add/", data)

    assert response.status_code == 200  # the form again, with the reason under the field
    errors = response.context["adminform"].form.errors
    assert errors["cfg_http_url"] == ["Only http and https URLs can be checked."]
    assert not Monitor.objects.filter(slug="checkout").exists()


def test_an_operator_may_still_save_raw_json(org, operator):
    client = console(operator)
    data = _add_form(
        client,
        org,
        raw_config="on",
        config=json.dumps({"url": "http://127.0.0.1:9/raw", "headers": {"X-Probe": "1"}}),
    )

    assert client.post("/admin/monitors/monitor/add/", data).status_code == 302

    monitor = Monitor.objects.get(organization=org, slug="checkout")
    assert monitor.config["headers"] == {"X-Probe": "1"}


def test_a_member_gets_no_json_box(org, member):
    page = console(member).get("/admin/monitors/monitor/add/")
    fields = page.context["adminform"].form.fields
    assert "config" not in fields
    assert "raw_config" not in fields
    assert 'name="config"' not in page.content.decode()


def test_a_private_address_is_refused_at_save_as_the_api_refuses_it(org, operator, settings):
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = False
    client = console(operator)
    # Never contacted: the guard refuses the literal address when the form is saved.
    data = _add_form(client, org, cfg_http_url="http://10.0.0.1/")

    response = client.post("/admin/monitors/monitor/add/", data)

    assert response.status_code == 200
    [message] = response.context["adminform"].form.errors["cfg_http_url"]
    assert message == "Target refused: 10.0.0.1 is a private or reserved address."
    assert not Monitor.objects.filter(slug="checkout").exists()


def test_the_quorum_cannot_exceed_the_regions_in_the_console_either(org, member):
    client = console(member)
    data = _add_form(client, org, cfg_http_url="http://127.0.0.1:9/", quorum="2")

    response = client.post("/admin/monitors/monitor/add/", data)

    assert response.status_code == 200
    assert "quorum" in response.context["adminform"].form.errors
    assert not Monitor.objects.filter(slug="checkout").exists()


def test_a_member_past_the_plan_limit_is_told_and_nothing_is_stored(org, member):
    for n in range(10):  # the free plan's 10 active monitors
        monitor_services.monitor_create(org=org, data={**HTTP, "name": f"m{n}"})
    client = console(member)
    data = _add_form(client, org, cfg_http_url="http://127.0.0.1:9/")

    response = client.post("/admin/monitors/monitor/add/", data, follow=True)

    text = " ".join(str(m) for m in response.context["messages"])
    assert "Nothing was saved" in text
    assert "upgrade required" in text
    assert Monitor.objects.filter(organization=org).count() == 10


def test_an_interval_below_the_plan_floor_is_refused_on_edit(org, member):
    monitor = monitor_services.monitor_create(org=org, data=dict(HTTP))
    client = console(member)
    url = f"/admin/monitors/monitor/{monitor.pk}/change/"
    data = {**form_data(client.get(url)), "interval_seconds": "60"}  # free: 300 s at least

    response = client.post(url, data, follow=True)

    assert "upgrade required" in " ".join(str(m) for m in response.context["messages"])
    monitor.refresh_from_db()
    assert monitor.interval_seconds == 300


def test_a_member_edits_a_monitor_and_its_kind_stays_fixed(org, member):
    monitor = monitor_services.monitor_create(org=org, data=dict(HTTP))
    client = console(member)
    url = f"/admin/monitors/monitor/{monitor.pk}/change/"
    page = client.get(url)
    assert "kind" not in page.context["adminform"].form.fields
    assert "organization" not in page.context["adminform"].form.fields
    data = {**form_data(page), "name": "api v2", "kind": "tcp"}

    assert client.post(url, data).status_code == 302

    monitor.refresh_from_db()
    assert (monitor.name, monitor.kind) == ("api v2", "http")
    entry = AuditEntry.objects.get(action="monitor.updated", object_id=str(monitor.pk))
    assert entry.changes == {"name": {"before": "api", "after": "api v2"}}


def test_a_viewer_reads_monitors_but_cannot_add_or_change_them(org, viewer):
    monitor = monitor_services.monitor_create(org=org, data=dict(HTTP))
    client = console(viewer)
    url = f"/admin/monitors/monitor/{monitor.pk}/change/"

    assert client.get(url).status_code == 200  # the view page
    assert client.get("/admin/monitors/monitor/add/").status_code == 403
    assert client.post(url, {"name": "forged"}).status_code == 403
    monitor.refresh_from_db()
    assert monitor.name == "api"


def test_another_tenants_monitor_cannot_be_changed_by_url(org, member, other_org):
    theirs = monitor_services.monitor_create(org=other_org, data=dict(HTTP))
    client = console(member)
    url = f"/admin/monitors/monitor/{theirs.pk}/change/"

    assert client.get(url).status_code == 404
    assert client.post(url, {"name": "forged"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.name == "api"


def test_the_newer_kinds_have_their_fields_and_a_kubernetes_token_is_kept_secret(org, member):
    client = console(member)
    data = _add_form(
        client,
        org,
        kind="kubernetes",
        cfg_kubernetes_server="https://127.0.0.1:6443",
        cfg_kubernetes_target="deployment",
        cfg_kubernetes_name="web",
        cfg_kubernetes_token="tok-from-the-console",
    )

    response = client.post("/admin/monitors/monitor/add/", data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    monitor = Monitor.objects.get(organization=org, slug="checkout")
    assert monitor.config["name"] == "web"
    assert "token" not in monitor.config
    assert monitor_services.secret_of(monitor) == "tok-from-the-console"
    page = client.get(f"/admin/monitors/monitor/{monitor.pk}/change/").content.decode()
    assert "tok-from-the-console" not in page
    for kind, field in (("smtp", "host"), ("icmp", "count"), ("grpc", "service")):
        assert (
            f'name="cfg_{kind}_{field}"'
            in client.get(f"/admin/monitors/monitor/add/?organization={org.pk}").content.decode()
        )
