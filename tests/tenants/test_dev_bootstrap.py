import pytest

from apps.tenants.models import ApiKey, Organization

pytestmark = pytest.mark.django_db
URL = "/api/dev/bootstrap"


def test_it_is_not_found_unless_enabled(anon, settings):
    settings.HEALTHORCH_DEV_BOOTSTRAP = False
    response = anon.post(URL, {}, format="json")
    assert response.status_code == 404
    assert not Organization.objects.exists()


def test_it_creates_an_organization_and_a_working_key(anon, settings):
    settings.HEALTHORCH_DEV_BOOTSTRAP = True
    response = anon.post(URL, {"name": "Dev shop"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["plan"] == "free"
    assert body["api_key"].startswith("hk_")
    org = Organization.objects.get(pk=body["org_id"])
    assert org.name == "Dev shop"
    me = anon.get("/api/v1/organization", HTTP_X_API_KEY=body["api_key"])
    assert me.status_code == 200
    assert me.json()["id"] == str(org.pk)
    assert ApiKey.objects.get(organization=org).scopes == ["read", "write"]


def test_it_rejects_unknown_fields(anon, settings):
    settings.HEALTHORCH_DEV_BOOTSTRAP = True
    response = anon.post(URL, {"name": "x", "plan": "enterprise"}, format="json")
    assert response.status_code == 400
    assert "plan" in response.json()["fields"]
    assert not Organization.objects.exists()
