"""The console pages for incidents (scoped to the member's organization, history read-only,
acknowledge/resolve through the services) and the OpenAPI description of the endpoints."""

import pytest
from django.utils import timezone

from apps.incidents.models import Incident, IncidentStatus, MaintenanceWindow
from apps.monitors.models import MonitorStatus
from tests.conftest import console
from tests.factories import make_monitor
from tests.incidents.conftest import down, feed

pytestmark = pytest.mark.django_db

PAGES = [
    "incidents/incident",
    "incidents/incidentevent",
    "incidents/alertrule",
    "incidents/monitordependency",
    "incidents/statuschange",
    "incidents/maintenancewindow",
]


@pytest.fixture
def incidents(org, other_org):
    for o in (org, other_org):
        feed(make_monitor(o, name=f"{o.slug}-api"), down(), down())
    return Incident.objects.get(organization=org), Incident.objects.get(organization=other_org)


@pytest.mark.parametrize("page", PAGES)
def test_every_incidents_page_opens_for_a_member(owner, incidents, page):
    assert console(owner).get(f"/admin/{page}/").status_code == 200


def test_a_member_sees_only_their_incidents_and_gets_404_for_others(owner, incidents):
    ours, theirs = incidents
    client = console(owner)
    listing = client.get("/admin/incidents/incident/").content.decode()
    assert "acme-api is down" in listing
    assert "globex-api is down" not in listing
    assert client.get(f"/admin/incidents/incident/{ours.pk}/change/").status_code == 200
    assert client.get(f"/admin/incidents/incident/{theirs.pk}/change/").status_code == 404


def test_acknowledging_from_the_console_goes_through_the_service(owner, incidents):
    ours, theirs = incidents
    client = console(owner)
    response = client.post(
        "/admin/incidents/incident/",
        {
            "action": "acknowledge",
            "_selected_action": [str(ours.pk), str(theirs.pk)],
            "confirm": "yes",
        },
    )
    assert response.status_code == 302
    ours.refresh_from_db()
    theirs.refresh_from_db()
    assert (ours.status, ours.acknowledged_by) == (IncidentStatus.ACKNOWLEDGED, owner)
    assert ours.events.filter(kind="acknowledged", actor=owner).exists()
    assert theirs.status == IncidentStatus.TRIGGERED


def test_deleting_a_window_in_the_console_ends_maintenance(owner, org):
    from apps.incidents import services

    monitor = make_monitor(org)
    now = timezone.now()
    window = services.window_create(
        org=org,
        data={
            "name": "w",
            "starts_at": now,
            "ends_at": now + timezone.timedelta(hours=1),
            "all_monitors": True,
        },
    )
    monitor.refresh_from_db()
    assert monitor.status == MonitorStatus.MAINTENANCE
    response = console(owner).post(
        f"/admin/incidents/maintenancewindow/{window.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert not MaintenanceWindow.objects.exists()
    monitor.refresh_from_db()
    assert monitor.status == MonitorStatus.UNKNOWN


ENDPOINTS = {
    "/api/v1/incidents/": {"get", "post"},
    "/api/v1/incidents/{id}/": {"get"},
    "/api/v1/incidents/{id}/acknowledge/": {"post"},
    "/api/v1/incidents/{id}/resolve/": {"post"},
    "/api/v1/incidents/{id}/notes/": {"post"},
    "/api/v1/incidents/{id}/snooze/": {"post"},
    "/api/v1/incidents/{id}/timeline/": {"get"},
    "/api/v1/alert-rules/": {"get"},
    "/api/v1/alert-rules/{kind}/": {"get", "patch"},
    "/api/v1/maintenance-windows/": {"get", "post"},
    "/api/v1/maintenance-windows/{id}/": {"get", "patch", "delete"},
    "/api/v1/monitor-dependencies/": {"get", "post"},
    "/api/v1/monitor-dependencies/{id}/": {"delete"},
}


def test_the_schema_documents_every_incidents_endpoint_and_its_errors(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path, methods in ENDPOINTS.items():
        assert path in schema["paths"], path
        assert methods == set(schema["paths"][path]) - {"parameters"}, path
        for method in methods:
            codes = set(schema["paths"][path][method]["responses"])
            assert {"401", "404"} <= codes, f"{method} {path}"
