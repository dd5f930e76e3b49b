"""The alert-rules, maintenance-windows and monitor-dependencies endpoints: behaviour,
validation, tenancy (outsiders get 404, viewers read only) and query counts."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.incidents.models import AlertRule, MaintenanceWindow, MonitorDependency
from apps.monitors.models import MonitorStatus
from apps.plans.metering import api_usage
from apps.plans.services import organization_change_plan
from tests.factories import make_monitor

pytestmark = pytest.mark.django_db
# An API-key list request: the key (with organization and plan), then the rows, then at most
# one prefetch; the same for 2 rows or 15.
QUERIES = 3


def _iso(moment):
    return moment.isoformat().replace("+00:00", "Z")


# --- Alert rules ------------------------------------------------------------------------------


def test_every_organization_starts_with_the_default_rules(client_for, viewer):
    body = client_for(viewer).get("/api/v1/alert-rules/").json()
    by_kind = {r["kind"]: r for r in body}
    assert set(by_kind) == {
        "service_down",
        "critical_service_down",
        "consecutive_failures",
        "high_response_time",
        "low_uptime",
        "certificate_expiry",
        "service_recovery",
        "flapping",
        "slo_burn",
        "error_signature",
    }
    assert by_kind["error_signature"]["enabled"] is False  # off until turned on
    assert by_kind["critical_service_down"]["severity"] == "critical"
    assert (by_kind["slo_burn"]["enabled"], by_kind["slo_burn"]["severity"]) == (True, "critical")
    assert by_kind["service_recovery"]["severity"] == "info"
    assert (by_kind["high_response_time"]["threshold"], by_kind["low_uptime"]["threshold"]) == (
        2.0,
        95.0,
    )
    assert (by_kind["flapping"]["threshold"], by_kind["flapping"]["window_seconds"]) == (5, 1800)
    assert not any(r["customized"] for r in body)
    assert not AlertRule.objects.exists()  # reading writes nothing


def test_a_member_changes_a_rule(client_for, member, org):
    client = client_for(member)
    response = client.patch(
        "/api/v1/alert-rules/low_uptime/",
        {"threshold": 99.5, "window_seconds": 7 * 86400},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["customized"] is True
    rule = AlertRule.objects.get(organization=org, kind="low_uptime")
    assert (rule.threshold, rule.window_seconds) == (99.5, 7 * 86400)
    assert client.get("/api/v1/alert-rules/low_uptime/").json()["threshold"] == 99.5
    assert AlertRule.objects.filter(organization=org).count() == 10


@pytest.mark.parametrize(
    ("kind", "payload", "field"),
    [
        ("service_down", {"threshold": 3}, "threshold"),
        ("low_uptime", {"threshold": 120}, "threshold"),
        ("low_uptime", {"window_seconds": 5400}, "window_seconds"),
        ("flapping", {"window_seconds": 10}, "window_seconds"),
        ("service_down", {"window_seconds": 600}, "window_seconds"),
        ("flapping", {"severity": "loud"}, "severity"),
        ("flapping", {"kind": "other"}, "kind"),
    ],
)
def test_bad_rule_values_are_400_with_the_field(client_for, member, kind, payload, field):
    response = client_for(member).patch(f"/api/v1/alert-rules/{kind}/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_an_unknown_rule_is_404(client_for, member):
    assert (
        client_for(member).patch("/api/v1/alert-rules/bogus/", {}, format="json").status_code == 404
    )


def test_rules_belong_to_one_organization(client_for, outsider, member, org):
    client_for(member).patch("/api/v1/alert-rules/flapping/", {"enabled": False}, format="json")
    theirs = client_for(outsider).get("/api/v1/alert-rules/flapping/").json()
    assert theirs["enabled"] is True
    # Naming our organization gets the outsider nothing but 404.
    client = client_for(outsider, org_slug=org.slug)
    assert client.get("/api/v1/alert-rules/").status_code == 404
    assert (
        client.patch("/api/v1/alert-rules/flapping/", {"enabled": True}, format="json").status_code
        == 404
    )
    assert AlertRule.objects.get(organization=org, kind="flapping").enabled is False


def test_a_viewer_cannot_change_rules(client_for, viewer):
    response = client_for(viewer).patch(
        "/api/v1/alert-rules/flapping/", {"enabled": False}, format="json"
    )
    assert response.status_code == 403


# --- Maintenance windows ----------------------------------------------------------------------


@pytest.fixture
def monitor(org):
    return make_monitor(org)


def _one_off(monitor, **extra):
    now = timezone.now()
    return {
        "name": "upgrade",
        "starts_at": _iso(now - timedelta(minutes=1)),
        "ends_at": _iso(now + timedelta(hours=2)),
        "monitors": [str(monitor.pk)],
        **extra,
    }


def test_creating_a_window_in_force_puts_its_monitors_in_maintenance(client_for, member, monitor):
    client = client_for(member)
    response = client.post("/api/v1/maintenance-windows/", _one_off(monitor), format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["active"] is True
    assert body["monitors"] == [str(monitor.pk)]
    monitor.refresh_from_db()
    assert monitor.status == MonitorStatus.MAINTENANCE
    assert client.get(f"/api/v1/monitors/{monitor.pk}/").json()["status"] == "maintenance"
    # Ending it early by PATCH brings the monitor back.
    response = client.patch(
        f"/api/v1/maintenance-windows/{body['id']}/",
        {"ends_at": _iso(timezone.now() - timedelta(seconds=1))},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["active"] is False
    monitor.refresh_from_db()
    assert monitor.status == MonitorStatus.UNKNOWN


def test_a_weekly_window_by_api(client_for, member, monitor):
    response = client_for(member).post(
        "/api/v1/maintenance-windows/",
        {
            "name": "Sunday patching",
            "recurrence": "weekly",
            "weekdays": [6],
            "start_time": "02:00",
            "duration_minutes": 90,
            "timezone": "Europe/Berlin",
            "tags": ["db"],
        },
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["next_start"] is not None
    window = MaintenanceWindow.objects.get(pk=body["id"])
    assert window.recurrence == "weekly"
    assert window.tags == ["db"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ends_at": None}, "ends_at"),
        ({"starts_at": None}, "starts_at"),
        ({"recurrence": "weekly"}, "weekdays"),
        ({"recurrence": "cron"}, "cron"),
        ({"recurrence": "cron", "cron": "every sunday", "duration_minutes": 5}, "cron"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"monitors": []}, "monitors"),
        ({"kind": "vacation"}, "kind"),
        ({"owner": "me"}, "owner"),
    ],
)
def test_bad_windows_are_400_with_the_field(client_for, member, monitor, change, field):
    payload = {**_one_off(monitor), **change}
    payload = {k: v for k, v in payload.items() if v is not None}
    response = client_for(member).post("/api/v1/maintenance-windows/", payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_a_window_cannot_name_another_organizations_monitor(client_for, member, other_org):
    theirs = make_monitor(other_org, name="theirs")
    response = client_for(member).post(
        "/api/v1/maintenance-windows/", _one_off(theirs), format="json"
    )
    assert response.status_code == 400
    assert "monitors" in response.json()["fields"]
    theirs.refresh_from_db()
    assert theirs.status == MonitorStatus.UNKNOWN


@pytest.fixture
def window(client_for, member, monitor):
    body = (
        client_for(member)
        .post("/api/v1/maintenance-windows/", _one_off(monitor), format="json")
        .json()
    )
    return MaintenanceWindow.objects.get(pk=body["id"])


def test_a_viewer_reads_windows_but_cannot_change_them(client_for, viewer, window, monitor):
    client = client_for(viewer)
    assert client.get("/api/v1/maintenance-windows/").status_code == 200
    assert client.get(f"/api/v1/maintenance-windows/{window.pk}/").status_code == 200
    assert (
        client.post("/api/v1/maintenance-windows/", _one_off(monitor), format="json").status_code
        == 403
    )
    assert (
        client.patch(
            f"/api/v1/maintenance-windows/{window.pk}/", {"name": "x"}, format="json"
        ).status_code
        == 403
    )
    assert client.delete(f"/api/v1/maintenance-windows/{window.pk}/").status_code == 403


def test_deleting_a_window_ends_maintenance(client_for, member, window, monitor):
    assert client_for(member).delete(f"/api/v1/maintenance-windows/{window.pk}/").status_code == 204
    monitor.refresh_from_db()
    assert monitor.status == MonitorStatus.UNKNOWN


def test_the_window_list_filters_by_kind_and_activity(client_for, member, window, monitor):
    client = client_for(member)
    payload = _one_off(monitor, name="later", kind="silence")
    payload["starts_at"] = _iso(timezone.now() + timedelta(days=1))
    payload["ends_at"] = _iso(timezone.now() + timedelta(days=2))
    client.post("/api/v1/maintenance-windows/", payload, format="json")

    def names(query):
        return [
            w["name"] for w in client.get(f"/api/v1/maintenance-windows/?{query}").json()["results"]
        ]

    assert names("active=true") == ["upgrade"]
    assert names("active=false") == ["later"]
    assert names("kind=silence") == ["later"]
    assert client.get("/api/v1/maintenance-windows/?active=maybe").status_code == 400


def test_the_window_list_does_not_grow_with_windows(key_client, org, django_assert_max_num_queries):
    organization_change_plan(org=org, plan_code="pro", source="test")
    monitors = [make_monitor(org, name=f"m{i}") for i in range(4)]
    client = key_client(org)
    for i in range(2):
        client.post(
            "/api/v1/maintenance-windows/", _one_off(monitors[i], name=f"w{i}"), format="json"
        )
    client.get("/api/v1/maintenance-windows/")
    api_usage.flush()
    with django_assert_max_num_queries(QUERIES):
        response = client.get("/api/v1/maintenance-windows/")
    assert response.status_code == 200, response.json()
    assert len(response.json()["results"]) == 2
    for i in range(2, 4):
        client.post(
            "/api/v1/maintenance-windows/", _one_off(monitors[i], name=f"w{i}"), format="json"
        )
    api_usage.flush()
    with django_assert_max_num_queries(QUERIES):
        assert len(client.get("/api/v1/maintenance-windows/").json()["results"]) == 4


# --- Dependencies -----------------------------------------------------------------------------


def test_a_member_adds_and_removes_a_dependency(client_for, member, org):
    router, app = make_monitor(org, name="router"), make_monitor(org, name="app")
    client = client_for(member)
    response = client.post(
        "/api/v1/monitor-dependencies/",
        {"monitor": str(app.pk), "depends_on": str(router.pk)},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["depends_on"]["name"] == "router"
    again = client.post(
        "/api/v1/monitor-dependencies/",
        {"monitor": str(app.pk), "depends_on": str(router.pk)},
        format="json",
    )
    assert again.status_code == 400
    cycle = client.post(
        "/api/v1/monitor-dependencies/",
        {"monitor": str(router.pk), "depends_on": str(app.pk)},
        format="json",
    )
    assert cycle.status_code == 400
    assert cycle.json()["code"] == "cycle"
    assert (
        client.delete(f"/api/v1/monitor-dependencies/{response.json()['id']}/").status_code == 204
    )
    assert not MonitorDependency.objects.exists()


def test_a_dependency_never_names_another_organizations_monitor(client_for, member, org, other_org):
    ours, theirs = make_monitor(org, name="ours"), make_monitor(other_org, name="theirs")
    response = client_for(member).post(
        "/api/v1/monitor-dependencies/",
        {"monitor": str(ours.pk), "depends_on": str(theirs.pk)},
        format="json",
    )
    assert response.status_code == 400
    assert "depends_on" in response.json()["fields"]
    other = make_monitor(org, name="other")
    dep = (
        client_for(member)
        .post(
            "/api/v1/monitor-dependencies/",
            {"monitor": str(ours.pk), "depends_on": str(other.pk)},
            format="json",
        )
        .json()
    )
    assert MonitorDependency.objects.filter(pk=dep["id"]).exists()


def test_a_viewer_cannot_add_dependencies(client_for, viewer, org):
    a, b = make_monitor(org, name="a"), make_monitor(org, name="b")
    client = client_for(viewer)
    assert client.get("/api/v1/monitor-dependencies/").status_code == 200
    response = client.post(
        "/api/v1/monitor-dependencies/",
        {"monitor": str(a.pk), "depends_on": str(b.pk)},
        format="json",
    )
    assert response.status_code == 403


def test_the_dependency_list_does_not_grow_with_rows(
    key_client, org, django_assert_max_num_queries
):
    from apps.incidents import services

    organization_change_plan(org=org, plan_code="pro", source="test")
    monitors = [make_monitor(org, name=f"m{i}") for i in range(8)]
    services.dependency_create(org=org, monitor=monitors[1], depends_on=monitors[0])
    client = key_client(org)
    client.get("/api/v1/monitor-dependencies/")
    api_usage.flush()
    with django_assert_max_num_queries(QUERIES):
        client.get("/api/v1/monitor-dependencies/")
    for i in range(2, 8):
        services.dependency_create(org=org, monitor=monitors[i], depends_on=monitors[0])
    api_usage.flush()
    with django_assert_max_num_queries(QUERIES):
        assert len(client.get("/api/v1/monitor-dependencies/").json()["results"]) == 7
