"""The status page API: plan gate, validation, roles, tenancy, incident communication."""

from __future__ import annotations

import pytest

from apps.plans.services import organization_change_plan
from apps.statuspages.models import StatusPage
from tests.factories import make_monitor
from tests.statuspages.conftest import make_incident, make_page, make_section

pytestmark = pytest.mark.django_db


def test_a_free_organization_gets_402_creating_a_status_page(org, owner, api):
    r = api(owner).post("/api/v1/status-pages/", {"name": "Acme", "slug": "acme"})
    assert r.status_code == 402
    assert r.json() == {
        "error": "Upgrade Required",
        "feature": "status_pages",
        "current_plan": "free",
    }
    assert not StatusPage.objects.exists()


def test_a_downgraded_organization_cannot_republish_its_page(pro, owner, api):
    client = api(owner)
    page = client.post(
        "/api/v1/status-pages/", {"name": "Acme", "slug": "acme", "published": False}
    ).json()
    organization_change_plan(org=pro, plan_code="free", source="test")
    r = client.patch(f"/api/v1/status-pages/{page['id']}/", {"published": True})
    assert r.status_code == 402
    assert r.json()["feature"] == "status_pages"
    assert StatusPage.objects.get(pk=page["id"]).published is False
    # Other edits still work: nothing is lost on a downgrade.
    assert client.patch(f"/api/v1/status-pages/{page['id']}/", {"name": "A"}).status_code == 200


def test_a_member_creates_a_page_and_sections_in_order(pro, member, api):
    client = api(member)
    a, b = make_monitor(pro, "api"), make_monitor(pro, "web")
    r = client.post(
        "/api/v1/status-pages/",
        {"name": "Acme", "slug": "acme-status", "private": True, "password": "hunter2-long"},
    )
    assert r.status_code == 201, r.json()
    page = r.json()
    assert page["url"] == "/status/acme-status/"
    assert page["has_password"] is True
    assert "password" not in page
    assert page["private_url"].startswith("/status/acme-status/?token=")
    r = client.post(
        "/api/v1/status-page-sections/",
        {
            "page": page["id"],
            "name": "Core",
            "monitors": [{"monitor": str(b.pk), "display_name": "Website"}, {"monitor": str(a.pk)}],
        },
    )
    assert r.status_code == 201, r.json()
    assert [m["monitor"] for m in r.json()["monitors"]] == [str(b.pk), str(a.pk)]
    assert r.json()["monitors"][0]["display_name"] == "Website"


def test_bad_input_is_a_400_naming_each_field(pro, owner, api):
    client = api(owner)
    r = client.post(
        "/api/v1/status-pages/",
        {"name": "", "slug": "not a slug", "history_days": 400, "plan": "x"},
    )
    assert r.status_code == 400
    fields = r.json()["fields"]
    assert set(fields) >= {"name", "slug", "history_days", "plan"}
    make_page(pro, slug="taken")
    r = client.post("/api/v1/status-pages/", {"name": "A", "slug": "taken"})
    assert r.status_code == 400
    assert r.json()["fields"] == {"slug": ["This address is taken."]}


def test_a_section_refuses_another_organizations_monitor(pro, other_org, owner, api):
    page = make_page(pro)
    foreign = make_monitor(other_org, "theirs")
    r = api(owner).post(
        "/api/v1/status-page-sections/",
        {"page": str(page.pk), "name": "S", "monitors": [{"monitor": str(foreign.pk)}]},
    )
    assert r.status_code == 400
    assert "monitors" in r.json()["fields"]
    r = api(owner).post(
        "/api/v1/status-page-sections/",
        {"page": str(page.pk), "name": "S", "monitors": [{"monitor": "nope"}]},
    )
    assert r.status_code == 400
    assert "monitors" in r.json()["fields"]


def test_a_viewer_reads_but_cannot_write(pro, viewer, api):
    page = make_page(pro)
    client = api(viewer)
    assert client.get("/api/v1/status-pages/").status_code == 200
    assert client.get(f"/api/v1/status-pages/{page.pk}/").status_code == 200
    assert client.patch(f"/api/v1/status-pages/{page.pk}/", {"name": "x"}).status_code == 403
    assert client.post("/api/v1/status-pages/", {"name": "x", "slug": "x"}).status_code == 403
    incident = make_incident(make_monitor(pro))
    r = client.post(
        f"/api/v1/incidents/{incident.pk}/updates",
        {"status": "identified", "message": "m"},
    )
    assert r.status_code == 403


def test_a_member_posts_updates_and_a_postmortem(pro, member, api, eager_tasks):
    monitor = make_monitor(pro)
    incident = make_incident(monitor)
    client = api(member)
    for status in ("investigating", "identified", "monitoring", "resolved"):
        r = client.post(
            f"/api/v1/incidents/{incident.pk}/updates",
            {"status": status, "message": f"now {status}"},
        )
        assert r.status_code == 201, r.json()
    listed = client.get(f"/api/v1/incidents/{incident.pk}/updates").json()
    assert [u["status"] for u in listed] == [
        "resolved",
        "monitoring",
        "identified",
        "investigating",
    ]
    r = client.put(
        f"/api/v1/incidents/{incident.pk}/postmortem",
        {"body": "The disk filled up."},
    )
    assert r.status_code == 200
    r = client.put(f"/api/v1/incidents/{incident.pk}/postmortem", {"body": "Rewritten."})
    assert client.get(f"/api/v1/incidents/{incident.pk}/postmortem").json()["body"] == "Rewritten."


def test_an_update_with_a_bad_status_is_a_400(pro, member, api):
    incident = make_incident(make_monitor(pro))
    r = api(member).post(
        f"/api/v1/incidents/{incident.pk}/updates", {"status": "fixed", "message": ""}
    )
    assert r.status_code == 400
    assert set(r.json()["fields"]) == {"status", "message"}


def test_section_lists_cost_the_same_queries_for_any_number_of_sections(
    pro, owner, api, django_assert_max_num_queries
):
    page = make_page(pro)
    monitors = [make_monitor(pro, f"m{i}") for i in range(6)]
    make_section(page, "one", monitors[:2])
    client = api(owner)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        assert client.get("/api/v1/status-page-sections/").status_code == 200
    for i in range(5):
        make_section(page, f"s{i}", monitors[i : i + 2])
    with CaptureQueriesContext(connection) as many:
        r = client.get("/api/v1/status-page-sections/")
    assert len(r.json()["results"]) == 6
    assert len(many) == len(few)


def test_moving_a_section_to_another_page_is_refused_by_name(pro, owner, api):
    page, other = make_page(pro), make_page(pro, slug="other")
    section = make_section(page, "Core", [make_monitor(pro)])
    client = api(owner)
    url = f"/api/v1/status-page-sections/{section.pk}/"
    refused = client.patch(url, {"page": str(other.pk), "name": "Moved"}, format="json")
    assert refused.status_code == 400
    assert refused.json()["fields"]["page"] == ["Unknown or read-only field."]
    section.refresh_from_db()
    assert (section.page_id, section.name) == (page.pk, "Core")
    renamed = client.patch(url, {"name": "Core services"}, format="json")
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "Core services"
