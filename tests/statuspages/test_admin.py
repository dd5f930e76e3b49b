"""The console: status pages scoped to the member's organizations (another tenant's rows are
404 on every page), created through the services (plan gate included)."""

from __future__ import annotations

import pytest

from apps.statuspages import services
from apps.statuspages.models import StatusPage, Subscriber
from tests.conftest import console
from tests.factories import make_monitor
from tests.statuspages.conftest import make_incident, make_page, make_section

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(pro, member):
    monitor = make_monitor(pro)
    page = make_page(pro)
    section = make_section(page, "Core", [monitor])
    incident = make_incident(monitor)
    update = services.incident_update_post(
        incident=incident, status="identified", message="m", user=member, notify=False
    )
    postmortem = services.postmortem_set(incident=incident, body="b", user=member)
    subscriber = Subscriber.objects.create(organization=pro, page=page, email="s@example.test")
    badge = services.badge_create(org=pro, monitor_id=monitor.pk)
    return {
        "statuspage": page,
        "statuspagesection": section,
        "incidentupdate": update,
        "postmortem": postmortem,
        "subscriber": subscriber,
        "badge": badge,
    }


def test_members_see_their_status_rows_in_the_console(owner, rows):
    client = console(owner)
    for model, obj in rows.items():
        assert client.get(f"/admin/statuspages/{model}/").status_code == 200, model
        r = client.get(f"/admin/statuspages/{model}/{obj.pk}/change/")
        assert r.status_code == 200, model


def test_a_member_creates_a_page_in_the_console_through_the_plan_gate(org, owner):
    client = console(owner)
    form = {
        "organization": str(org.pk),
        "name": "Acme",
        "slug": "acme-console",
        "published": "on",
        "history_days": "14",
        "password": "",
    }
    r = client.post("/admin/statuspages/statuspage/add/", form)
    assert r.status_code == 200
    assert "Upgrade Required" in r.content.decode()
    assert not StatusPage.objects.exists()
    from apps.plans.services import organization_change_plan

    organization_change_plan(org=org, plan_code="pro", source="test")
    r = client.post("/admin/statuspages/statuspage/add/", {**form, "password": "p4ssword!"})
    assert r.status_code == 302
    page = StatusPage.objects.get()
    assert page.slug == "acme-console"
    assert page.password_hash.startswith("md5$")  # hashed, never stored in clear
