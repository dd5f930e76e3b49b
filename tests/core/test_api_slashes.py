"""Every /api/ path answers the same with or without its trailing slash: no redirect (a POST
cannot follow one), never HTML, the method and body kept."""

from __future__ import annotations

import pytest

from apps.monitors.models import Monitor
from apps.plans.services import organization_change_plan
from apps.statuspages.models import IncidentUpdate
from tests.factories import make_monitor
from tests.statuspages.conftest import make_incident


@pytest.fixture
def monitor(org):
    return make_monitor(org)


@pytest.mark.parametrize("slash", ["", "/"], ids=["without", "with"])
def test_a_post_to_an_action_works_either_way(client_for, member, monitor, slash):
    response = client_for(member).post(f"/api/v1/monitors/{monitor.pk}/pause{slash}")
    assert response.status_code == 200, response.content[:200]
    monitor.refresh_from_db()
    assert monitor.paused


@pytest.mark.parametrize("slash", ["", "/"], ids=["without", "with"])
def test_a_route_declared_without_a_slash_takes_one(client_for, member, org, monitor, slash):
    organization_change_plan(org=org, plan_code="pro", source="test")
    incident = make_incident(monitor)
    response = client_for(member).post(
        f"/api/v1/incidents/{incident.pk}/updates{slash}",
        {"status": "identified", "message": "Looking into it."},
        format="json",
    )
    assert response.status_code == 201, response.content[:200]
    assert IncidentUpdate.objects.filter(incident=incident).count() == 1


@pytest.mark.parametrize(
    "path", ["/api/v1/monitors", "/api/v1/monitors/", "/api/v1/usage", "/api/v1/usage/"]
)
def test_reads_answer_either_way(client_for, member, monitor, path):
    response = client_for(member).get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("path", ["/api/v1/nothing-here", "/api/v1/nothing-here/"])
def test_an_unknown_path_is_a_json_404_not_a_redirect(client_for, member, path):
    response = client_for(member).post(path, {}, format="json")
    assert response.status_code == 404
    assert response.json()["error"] == "Not found"
    assert Monitor.objects.count() == 0
