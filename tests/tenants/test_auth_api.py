import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from apps.tenants.models import Membership, Organization, Role
from tests.factories import PASSWORD, UserFactory

User = get_user_model()
REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"

pytestmark = pytest.mark.django_db


def register(anon, **overrides):
    body = {"email": "ada@example.test", "password": PASSWORD, "organization": "Analytical"}
    return anon.post(REGISTER, body | overrides, format="json")


def test_it_registers_a_user_with_an_organization_on_the_free_plan(anon):
    response = register(anon)
    assert response.status_code == 201
    user = User.objects.get(email="ada@example.test")
    membership = Membership.objects.get(user=user)
    assert membership.role == Role.OWNER
    assert membership.organization.plan_id == "free"
    assert response.json()["token"] == Token.objects.get(user=user).key
    org = anon.get("/api/v1/organization", HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert org.json()["name"] == "Analytical"


def test_it_rejects_a_duplicate_email_with_a_field_message(anon):
    UserFactory(email="ada@example.test")
    response = register(anon, email="ADA@example.test")
    assert response.status_code == 400
    assert "email" in response.json()["fields"]
    assert Organization.objects.count() == 0


def test_it_applies_django_password_validators_and_stores_nothing(anon):
    response = register(anon, password="123")
    assert response.status_code == 400
    assert "password" in response.json()["fields"]
    assert not User.objects.exists()
    assert not Organization.objects.exists()


def test_it_names_missing_and_unknown_fields(anon):
    response = anon.post(REGISTER, {"email": "x@example.test", "plan": "enterprise"}, format="json")
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert fields["plan"] == ["Unknown or read-only field."]
    assert set(fields) == {"plan", "password", "organization"}


def test_it_rejects_malformed_json_with_400(anon):
    response = anon.post(REGISTER, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "Malformed request"


def test_login_returns_a_token(anon):
    user = UserFactory(email="grace@example.test")
    response = anon.post(
        LOGIN, {"email": "Grace@example.test", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["token"] == Token.objects.get(user=user).key


def test_login_does_not_say_which_part_was_wrong(anon):
    UserFactory(email="grace@example.test")
    wrong_password = anon.post(
        LOGIN, {"email": "grace@example.test", "password": "nope"}, format="json"
    )
    unknown_email = anon.post(
        LOGIN, {"email": "nobody@example.test", "password": "nope"}, format="json"
    )
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert wrong_password.json() == unknown_email.json()
    assert "WWW-Authenticate" in wrong_password


def test_login_throttles_repeated_failures_with_retry_after(anon, settings):
    settings.LOGIN_FAILURES_PER_EMAIL = 3
    UserFactory(email="grace@example.test")
    bad = {"email": "grace@example.test", "password": "nope"}
    for _ in range(3):
        assert anon.post(LOGIN, bad, format="json").status_code == 401
    throttled = anon.post(LOGIN, {**bad, "password": PASSWORD}, format="json")
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) > 0
    # Another account from the same client is still allowed (per email bucket).
    UserFactory(email="alan@example.test")
    other = anon.post(LOGIN, {"email": "alan@example.test", "password": PASSWORD}, format="json")
    assert other.status_code == 200


def test_a_successful_login_resets_the_failure_count(anon, settings):
    settings.LOGIN_FAILURES_PER_EMAIL = 3
    UserFactory(email="grace@example.test")
    bad = {"email": "grace@example.test", "password": "nope"}
    good = {"email": "grace@example.test", "password": PASSWORD}
    for _ in range(2):
        anon.post(LOGIN, bad, format="json")
    assert anon.post(LOGIN, good, format="json").status_code == 200
    for _ in range(2):
        assert anon.post(LOGIN, bad, format="json").status_code == 401
    assert anon.post(LOGIN, good, format="json").status_code == 200
