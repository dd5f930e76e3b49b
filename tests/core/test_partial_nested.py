"""A PATCH may leave out a whole nested list, but each item it sends must be complete: an item
without its required key was a 500 (the service met a step or a section monitor without it)."""

from __future__ import annotations

import pytest

from apps.alerts.models import EscalationPolicy
from apps.plans.services import organization_change_plan
from apps.statuspages.models import StatusPageSection
from tests.alerts.conftest import make_email
from tests.factories import make_monitor
from tests.statuspages.conftest import make_page, make_section


@pytest.fixture
def section(org):
    organization_change_plan(org=org, plan_code="pro", source="test")
    return make_section(make_page(org), "Core", [make_monitor(org)])


@pytest.fixture
def policy(org, client_for, owner):
    organization_change_plan(org=org, plan_code="pro", source="test")
    channel = make_email(org)
    body = {
        "name": "p",
        "severities": ["critical"],
        "steps": [{"delay_minutes": 0, "channels": [str(channel.pk)]}],
    }
    response = client_for(owner).post("/api/v1/escalation-policies/", body, format="json")
    assert response.status_code == 201, response.content[:300]
    return EscalationPolicy.objects.get()


CASES = [
    # (fixture, path, body, the field named, the key it lacks)
    (
        "section",
        "/api/v1/status-page-sections/{pk}/",
        {"monitors": [{"display_name": "x"}]},
        "monitors",
        "monitor",
    ),
    ("section", "/api/v1/status-page-sections/{pk}/", {"monitors": [{}]}, "monitors", "monitor"),
    (
        "policy",
        "/api/v1/escalation-policies/{pk}/",
        {"steps": [{"delay_minutes": 5}]},
        "steps",
        "channels",
    ),
]


@pytest.mark.parametrize(("fixture", "path", "body", "field", "key"), CASES)
def test_a_nested_item_missing_its_key_in_a_patch_is_a_400(
    request, client_for, owner, fixture, path, body, field, key
):
    target = request.getfixturevalue(fixture)
    response = client_for(owner).patch(path.format(pk=target.pk), body, format="json")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["fields"][field] == {"0": {key: ["This field is required."]}}


def test_a_patch_may_still_leave_the_list_out(client_for, owner, section):
    response = client_for(owner).patch(
        f"/api/v1/status-page-sections/{section.pk}/", {"name": "Edge"}, format="json"
    )
    assert response.status_code == 200, response.content[:300]
    assert StatusPageSection.objects.get(pk=section.pk).items.count() == 1
