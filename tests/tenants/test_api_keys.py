from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from apps.tenants import services
from apps.tenants.models import ApiKey

pytestmark = pytest.mark.django_db
URL = "/api/v1/api-keys/"


def test_owner_creates_a_key_and_sees_the_secret_once(client_for, owner, org):
    client = client_for(owner)
    created = client.post(URL, {"name": "ci", "scopes": ["write"]}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith(body["prefix"] + "_")
    assert body["scopes"] == ["read", "write"]
    listed = client.get(URL).json()["results"]
    assert [k["prefix"] for k in listed] == [body["prefix"]]
    assert "key" not in listed[0]
    assert "key" not in client.get(f"{URL}{body['id']}/").json()


def test_the_secret_is_never_stored(org):
    issued = services.api_key_create(org=org, name="x", scopes=["read"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM tenants_apikey")
        rows = cursor.fetchall()
    assert rows
    assert all(issued.secret not in str(value) for row in rows for value in row)
    assert ApiKey.objects.get().key_hash == services.hash_api_key(issued.secret)


def test_a_key_authenticates_by_header_and_by_bearer(anon, org):
    issued = services.api_key_create(org=org, name="x", scopes=["read"])
    by_header = anon.get("/api/v1/organization", HTTP_X_API_KEY=issued.secret)
    by_bearer = anon.get("/api/v1/organization", HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert by_header.status_code == by_bearer.status_code == 200
    assert by_header.json()["slug"] == "acme"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_X_API_KEY": "hk_nope_nope"},
        {"HTTP_AUTHORIZATION": "Bearer hk_nope_nope"},
        {"HTTP_AUTHORIZATION": "Token not-a-token"},
    ],
)
def test_missing_or_invalid_credentials_are_401_with_www_authenticate(anon, headers):
    response = anon.get("/api/v1/organization", **headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"]
    assert response.json()["error"] == "Authentication required"


def test_a_revoked_key_stops_working_at_once(client_for, owner, key_client, org):
    client = key_client(org)
    assert client.get("/api/v1/organization").status_code == 200
    revoke = client_for(owner).delete(f"{URL}{client.api_key.pk}/")
    assert revoke.status_code == 204
    response = client.get("/api/v1/organization")
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]
    assert ApiKey.objects.get(pk=client.api_key.pk).revoked_at is not None


def test_an_expired_key_is_refused(anon, org):
    issued = services.api_key_create(
        org=org, name="x", scopes=["read"], expires_at=timezone.now() + timedelta(hours=1)
    )
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        response = anon.get("/api/v1/organization", HTTP_X_API_KEY=issued.secret)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_expiry_in_the_past_is_rejected(client_for, owner):
    past = (timezone.now() - timedelta(days=1)).isoformat()
    response = client_for(owner).post(
        URL, {"name": "old", "scopes": ["read"], "expires_at": past}, format="json"
    )
    assert response.status_code == 400
    assert "expires_at" in response.json()["fields"]
    assert not ApiKey.objects.exists()


def test_last_used_at_is_written_at_most_once_a_minute(key_client, org):
    client = key_client(org)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        client.get("/api/v1/organization")
    first = ApiKey.objects.get(pk=client.api_key.pk).last_used_at
    assert first == start
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        client.get("/api/v1/organization")
    assert ApiKey.objects.get(pk=client.api_key.pk).last_used_at == first
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        client.get("/api/v1/organization")
    assert ApiKey.objects.get(pk=client.api_key.pk).last_used_at == start + timedelta(seconds=61)


def test_a_fresh_key_request_writes_nothing(key_client, org, django_assert_num_queries):
    client = key_client(org)
    client.get("/api/v1/organization")  # records first use
    with django_assert_num_queries(1):  # the key lookup, joined with its organization
        assert client.get("/api/v1/organization").status_code == 200


@pytest.mark.parametrize(
    ("scopes", "error"),
    [([], "scopes"), (["admin"], "scopes"), ("read", "scopes")],
)
def test_bad_scopes_are_400_naming_the_field(client_for, owner, scopes, error):
    response = client_for(owner).post(URL, {"name": "x", "scopes": scopes}, format="json")
    assert response.status_code == 400
    assert error in response.json()["fields"]
    assert not ApiKey.objects.exists()


def test_a_read_only_key_cannot_write(key_client, org):
    client = key_client(org, scopes=["read"])
    response = client.patch("/api/v1/organization", {"name": "Evil"}, format="json")
    assert response.status_code == 403
    org.refresh_from_db()
    assert org.name == "Acme"


def test_keys_cannot_manage_keys_or_members(key_client, org):
    client = key_client(org, scopes=["read", "write"])
    assert client.post(URL, {"name": "more", "scopes": ["read"]}, format="json").status_code == 403
    assert client.get(URL).status_code == 403
    assert ApiKey.objects.count() == 1


@pytest.mark.parametrize("role_fixture", ["member", "viewer"])
def test_only_owners_and_admins_manage_keys(request, client_for, role_fixture):
    user = request.getfixturevalue(role_fixture)
    client = client_for(user)
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"name": "x", "scopes": ["read"]}, format="json").status_code == 403


def test_admin_can_manage_keys(client_for, admin_user):
    assert client_for(admin_user).post(URL, {"name": "x"}, format="json").status_code == 201


def test_purge_removes_long_dead_keys_and_keeps_recent_ones(org):
    old = services.api_key_create(org=org, name="old", scopes=["read"]).api_key
    recent = services.api_key_create(org=org, name="recent", scopes=["read"]).api_key
    live = services.api_key_create(org=org, name="live", scopes=["read"]).api_key
    ApiKey.objects.filter(pk=old.pk).update(revoked_at=timezone.now() - timedelta(days=31))
    ApiKey.objects.filter(pk=recent.pk).update(revoked_at=timezone.now() - timedelta(days=1))
    from apps.tenants.tasks import purge_dead_api_keys

    assert purge_dead_api_keys() == 1
    assert set(ApiKey.objects.values_list("pk", flat=True)) == {recent.pk, live.pk}
