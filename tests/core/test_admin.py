import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client

from apps.tenants import services
from apps.tenants.models import ApiKey, Organization
from tests.conftest import console

pytestmark = pytest.mark.django_db
LOCAL_APPS = [
    "tenants",
    "plans",
    "monitors",
    "incidents",
    "alerts",
    "billing",
    "healing",
    "audit",
    "reports",
    "statuspages",
]


#: models edited only inline on their parent's page, which the parent's admin scopes
INLINE_ONLY = {"statuspages.StatusPageMonitor"}


def test_every_model_of_ours_is_registered():
    for label in LOCAL_APPS:
        for model in apps.get_app_config(label).get_models():
            if model._meta.label not in INLINE_ONLY:
                assert admin.site.is_registered(model), model


def test_operator_sees_every_organization(operator, org, other_org):
    client = Client()
    client.force_login(operator)
    page = client.get("/admin/tenants/organization/").content.decode()
    assert "Acme" in page
    assert "Globex" in page


def test_a_tenant_member_sees_only_their_organization(owner, org, other_org):
    client = console(owner)
    page = client.get("/admin/tenants/organization/").content.decode()
    assert "Acme" in page
    assert "Globex" not in page
    services.api_key_create(org=other_org, name="globex-secret-key", scopes=["read"])
    services.api_key_create(org=org, name="acme-key", scopes=["read"])
    keys = client.get("/admin/tenants/apikey/").content.decode()
    assert "acme-key" in keys
    assert "globex-secret-key" not in keys


def test_url_tampering_with_another_tenants_object_is_404(owner, other_org):
    client = console(owner)
    key = services.api_key_create(org=other_org, name="x", scopes=["read"]).api_key
    assert client.get(f"/admin/tenants/apikey/{key.pk}/change/").status_code == 404
    assert client.get(f"/admin/tenants/organization/{other_org.pk}/change/").status_code == 404
    assert (
        client.post(f"/admin/tenants/apikey/{key.pk}/delete/", {"post": "yes"}).status_code == 404
    )
    assert ApiKey.objects.filter(pk=key.pk).exists()


def test_a_viewer_reads_but_cannot_change(viewer, org):
    client = console(viewer)
    url = f"/admin/tenants/organization/{org.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    forged = client.post(url, {"name": "Hacked", "slug": "acme", "plan": "free"})
    assert forged.status_code == 403
    assert Organization.objects.get(pk=org.pk).name == "Acme"


def test_operators_only_models_are_hidden_from_tenants(owner):
    client = console(owner)
    index = client.get("/admin/").content.decode()
    assert "Organizations" in index
    assert "Periodic tasks" not in index
    assert client.get("/admin/django_celery_beat/periodictask/").status_code == 403


def test_creating_a_key_in_the_admin_shows_the_secret_once(operator, org):
    client = Client()
    client.force_login(operator)
    response = client.post(
        "/admin/tenants/apikey/add/",
        {"organization": org.pk, "name": "from-admin", "scopes": ["read", "write"]},
        follow=True,
    )
    assert response.status_code == 200
    key = ApiKey.objects.get(name="from-admin")
    messages = [str(m) for m in response.context["messages"]]
    secret = next(m.split(": ")[-1] for m in messages if "not be shown again" in m)
    assert services.hash_api_key(secret) == key.key_hash
    assert key.scopes == ["read", "write"]


def test_revoking_from_the_admin(operator, org):
    key = services.api_key_create(org=org, name="x", scopes=["read"]).api_key
    client = Client()
    client.force_login(operator)
    selection = {"action": "revoke", "_selected_action": [str(key.pk)]}
    page = client.post("/admin/tenants/apikey/", selection)
    assert "Revoke 1 API key(s)?" in page.content.decode()  # asked first
    assert ApiKey.objects.get(pk=key.pk).revoked_at is None
    client.post("/admin/tenants/apikey/", {**selection, "confirm": "yes"})
    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None


def test_tenant_staff_see_only_their_monitors_in_the_console(owner, org, other_org):
    from apps.monitors import services as monitor_services

    mine = monitor_services.monitor_create(
        org=org, data={"name": "mine", "kind": "http", "config": {"url": "http://127.0.0.1:9/"}}
    )
    theirs = monitor_services.monitor_create(
        org=other_org,
        data={"name": "theirs", "kind": "http", "config": {"url": "http://127.0.0.1:9/"}},
    )
    client = console(owner)
    page = client.get("/admin/monitors/monitor/").content.decode()
    assert "mine" in page
    assert "theirs" not in page
    assert client.get(f"/admin/monitors/monitor/{theirs.pk}/change/").status_code == 404
    # Owners edit through the API's validation (tests/console/test_monitor_form.py); `paused`
    # is not a form field: a forged one changes nothing.
    forged = client.post(
        f"/admin/monitors/monitor/{mine.pk}/change/", {"name": "x", "paused": "on"}
    )
    assert forged.status_code == 200  # the form again: the other fields are required
    mine.refresh_from_db()
    assert (mine.name, mine.paused) == ("mine", False)


def test_adding_a_member_in_the_console_respects_the_plan(operator, org):
    from tests.factories import MembershipFactory, UserFactory

    MembershipFactory.create_batch(3, organization=org)  # the free plan's 3
    client = Client()
    client.force_login(operator)
    newcomer = UserFactory()
    response = client.post(
        "/admin/tenants/membership/add/",
        {"organization": org.pk, "user": newcomer.pk, "role": "member"},
    )
    assert response.status_code == 200  # the form again, with the error
    assert "allows 3 members" in response.content.decode()
    assert not org.memberships.filter(user=newcomer).exists()


def test_operators_see_every_plan_limit_in_the_plan_pages(operator):
    from apps.plans.models import Limit, Plan

    client = Client()
    client.force_login(operator)
    listing = client.get("/admin/plans/plan/")
    assert listing.status_code == 200
    pro = Plan.objects.get(code="pro")
    form = client.get(f"/admin/plans/plan/{pro.pk}/change/").content.decode()
    for name in Limit.values:
        assert f'name="{name}"' in form, name


def test_the_schedule_queue_is_for_operators_only(operator, owner, org):
    from apps.monitors import services as monitor_services

    monitor_services.monitor_create(
        org=org, data={"name": "web", "kind": "tcp", "config": {"host": "127.0.0.1", "port": 9}}
    )
    operator_client = Client()
    operator_client.force_login(operator)
    page = operator_client.get("/admin/monitors/monitorschedule/")
    assert page.status_code == 200
    assert "web" in page.content.decode()
    assert console(owner).get("/admin/monitors/monitorschedule/").status_code == 403
