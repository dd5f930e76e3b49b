"""Tenant members in the console: their organization only, by role; other tenants' objects are
404 by URL; operators' pages are closed to them."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.alerts.models import EscalationPolicy
from apps.incidents.models import AlertRule, MaintenanceWindow
from apps.monitors.models import CheckResult, Monitor
from apps.tenants import services
from apps.tenants.models import ApiKey
from tests.console import support

pytestmark = pytest.mark.django_db


def _objects(org) -> dict[str, object]:
    """One object of each tenant-owned kind the console shows, keyed by its admin path."""
    (monitor,) = support.monitors(org, 1, prefix=f"{org.slug}-mon")
    incident = support.incident(org, monitor=monitor, title=f"{org.slug} incident")
    notification = support.notification(org, status="dead", incident_row=incident)
    now = timezone.now()
    return {
        "monitors/monitor": monitor,
        "incidents/incident": incident,
        "alerts/notification": notification,
        "alerts/channel": notification.channel,
        "alerts/escalationpolicy": EscalationPolicy.objects.create(
            organization=org, name=f"{org.slug} policy"
        ),
        "incidents/maintenancewindow": MaintenanceWindow.objects.create(
            organization=org, name=f"{org.slug} window", starts_at=now, ends_at=now
        ),
        "incidents/alertrule": AlertRule.objects.create(
            organization=org, kind="service_down", severity="critical"
        ),
        "tenants/membership": org.memberships.first(),
        "tenants/apikey": services.api_key_create(org=org, name="k", scopes=["read"]).api_key,
        "tenants/organization": org,
    }


def test_another_tenants_objects_are_404_by_url_whatever_the_page(owner, org, other_org):
    from tests.factories import MembershipFactory

    MembershipFactory(organization=other_org)
    client = support.login(owner)
    for path, obj in _objects(other_org).items():
        for suffix in ("change/", "delete/", "history/"):
            url = f"/admin/{path}/{obj.pk}/{suffix}"
            assert client.get(url).status_code == 404, url
        forged = client.post(f"/admin/{path}/{obj.pk}/change/", {"name": "x"})
        assert forged.status_code == 404, path
    assert Monitor.objects.filter(organization=other_org, name__startswith="globex").exists()


def test_a_viewer_reads_every_page_but_has_no_write_button(viewer, org):
    client = support.login(viewer)
    for path, obj in _objects(org).items():
        listing = client.get(f"/admin/{path}/").content.decode()
        assert "addlink" not in listing, path
        page = client.get(f"/admin/{path}/{obj.pk}/change/")
        assert page.status_code == 200, path
        html = page.content.decode()
        assert 'name="_save"' not in html, path
        assert "deletelink" not in html, path


def test_a_viewers_forged_posts_are_refused_and_change_nothing(viewer, org):
    client = support.login(viewer)
    objects = _objects(org)
    for path, obj in objects.items():
        response = client.post(f"/admin/{path}/{obj.pk}/change/", {"name": "hacked"})
        assert response.status_code == 403, path
        response = client.post(f"/admin/{path}/{obj.pk}/delete/", {"post": "yes"})
        assert response.status_code == 403, path
    window = objects["incidents/maintenancewindow"]
    window.refresh_from_db()
    assert window.name == "acme window"
    assert client.post("/admin/tenants/apikey/add/", {"name": "x"}).status_code == 403


def test_a_member_cannot_manage_members_or_keys_but_an_admin_can(member, admin_user, org):
    key = services.api_key_create(org=org, name="k", scopes=["read"]).api_key
    as_member = support.login(member)
    assert as_member.get("/admin/tenants/apikey/add/").status_code == 403
    assert as_member.get("/admin/tenants/membership/add/").status_code == 403
    assert (
        'name="_save"'
        not in as_member.get(f"/admin/tenants/apikey/{key.pk}/change/").content.decode()
    )
    as_admin = support.login(admin_user)
    assert as_admin.get("/admin/tenants/apikey/add/").status_code == 200
    assert as_admin.get("/admin/tenants/membership/add/").status_code == 200
    response = as_admin.post(
        "/admin/tenants/apikey/add/",
        {"organization": org.pk, "name": "from-console", "scopes": ["read"]},
        follow=True,
    )
    assert response.status_code == 200
    assert ApiKey.objects.filter(organization=org, name="from-console").exists()


@pytest.mark.parametrize(
    "url",
    [
        "/admin/plans/plan/",
        "/admin/plans/limitoverride/",
        "/admin/billing/plancomp/",
        "/admin/audit/auditentry/",
        "/admin/monitors/monitorschedule/",
        "/admin/django_celery_beat/periodictask/",
        "/admin/auth/user/",
    ],
)
def test_operators_pages_are_closed_and_unlisted_for_tenants(url, owner):
    client = support.login(owner)
    assert client.get(url).status_code == 403
    index = client.get("/admin/").content.decode()
    assert f'href="{url}"' not in index


def test_history_is_read_only_for_tenants_even_with_a_write_role(owner, org):
    (monitor,) = support.monitors(org, 1)
    support.results(monitor, 1)
    notification = support.notification(org, status="dead")
    client = support.login(owner)
    result = CheckResult.objects.get(monitor=monitor)
    for url in (
        f"/admin/monitors/checkresult/{result.pk}/delete/",
        f"/admin/alerts/notification/{notification.pk}/delete/",
    ):
        assert client.post(url, {"post": "yes"}).status_code == 403
    assert CheckResult.objects.filter(pk=result.pk).exists()


def test_a_channel_page_lists_its_recent_deliveries(owner, org):
    notification = support.notification(org, status="dead")
    notification.last_error = "HTTP 500 from the receiver"
    notification.save(update_fields=["last_error"])
    page = support.login(owner).get(f"/admin/alerts/channel/{notification.channel_id}/change/")
    html = page.content.decode()
    assert "last 20 deliveries" in html.lower()
    assert "HTTP 500 from the receiver" in html
    assert f"/admin/alerts/notification/{notification.pk}/change/" in html
