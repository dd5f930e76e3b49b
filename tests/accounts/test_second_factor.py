"""Second factor: a member sets up TOTP (with recovery codes) and signs in with it; an owner
on a plan with `mfa_enforcement` requires it of everyone, enforced at sign-in to the console."""

from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.test import Client

from apps.tenants import services
from tests.accounts.totp import code_for, secret_in_session
from tests.factories import PASSWORD, MembershipFactory

pytestmark = pytest.mark.django_db


def _verified(user):
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


def _sign_in(client: Client, user) -> object:
    return client.post("/accounts/login/", {"login": user.email, "password": PASSWORD})


def _activate_totp(client: Client) -> str:
    page = client.get("/accounts/2fa/totp/activate/")
    if page.status_code == 302:  # allauth asks for the password again before a new factor
        assert page["Location"].startswith("/accounts/reauthenticate/")
        assert client.post(page["Location"], {"password": PASSWORD}).status_code == 302
        page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200
    secret = secret_in_session(client.session)
    response = client.post("/accounts/2fa/totp/activate/", {"code": code_for(secret)})
    assert response.status_code == 302, response.content.decode()[:2000]
    return secret


def test_a_member_sets_up_totp_and_then_signs_in_with_a_code(org):
    member = _verified(MembershipFactory(organization=org).user)
    client = Client()
    assert _sign_in(client, member)["Location"] == "/admin/"
    secret = _activate_totp(client)
    types = set(Authenticator.objects.filter(user=member).values_list("type", flat=True))
    assert types == {"totp", "recovery_codes"}
    client.post("/accounts/logout/")

    again = Client()
    asked = _sign_in(again, member)
    assert asked["Location"] == "/accounts/2fa/authenticate/"
    assert "_auth_user_id" not in again.session  # the password alone is not enough
    wrong = again.post("/accounts/2fa/authenticate/", {"code": "000000"})
    assert wrong.status_code == 200
    assert "_auth_user_id" not in again.session
    # The code used at set-up cannot be replayed; the next period's code signs in.
    import time

    import time_machine

    with time_machine.travel(time.time() + 30):
        done = again.post("/accounts/2fa/authenticate/", {"code": code_for(secret)})
    assert done["Location"] == "/admin/"
    assert again.get("/admin/").status_code == 200


def test_a_recovery_code_signs_in_once(org):
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes

    member = _verified(MembershipFactory(organization=org).user)
    client = Client()
    _sign_in(client, member)
    _activate_totp(client)
    codes = RecoveryCodes(Authenticator.objects.get(user=member, type="recovery_codes"))
    code = codes.get_unused_codes()[0]
    for attempt in range(2):
        other = Client()
        _sign_in(other, member)
        response = other.post("/accounts/2fa/authenticate/", {"code": code})
        if attempt == 0:
            assert response["Location"] == "/admin/"
        else:
            assert response.status_code == 200  # used once already
            assert "_auth_user_id" not in other.session


def test_requiring_a_second_factor_is_a_plan_feature(client_for, owner, org):
    api = client_for(owner)
    refused = api.patch("/api/v1/organization", {"require_mfa": True}, format="json")
    assert refused.status_code == 402
    assert refused.json()["feature"] == "mfa_enforcement"
    org.refresh_from_db()
    assert org.require_mfa is False


def test_members_without_a_factor_set_one_up_before_the_console(pro, client_for, owner, org):
    assert (
        client_for(owner)
        .patch("/api/v1/organization", {"require_mfa": True}, format="json")
        .json()["require_mfa"]
    )
    member = _verified(MembershipFactory(organization=org).user)
    client = Client()
    assert _sign_in(client, member)["Location"] == "/admin/"
    held = client.get("/admin/")
    assert held.status_code == 302
    assert held["Location"] == "/accounts/2fa/totp/activate/"
    assert client.get("/admin/monitors/monitor/")["Location"] == "/accounts/2fa/totp/activate/"
    by_session = client.get("/api/v1/monitors/")  # the API with the browser's session too
    assert by_session.status_code == 403
    assert by_session.json()["code"] == "second_factor_required"
    _activate_totp(client)
    assert client.get("/admin/").status_code == 200
    assert client.get("/api/v1/monitors/").status_code == 200


def test_the_requirement_does_not_reach_other_organizations_members(pro, org, outsider):
    services.organization_require_mfa(org=org, required=True)
    _verified(outsider)
    client = Client()
    _sign_in(client, outsider)
    assert client.get("/admin/").status_code == 200


def test_turning_the_requirement_off_needs_no_plan(pro, org):
    from apps.plans.services import organization_change_plan

    services.organization_require_mfa(org=org, required=True)
    organization_change_plan(org=org, plan_code="free", source="test")
    services.organization_require_mfa(org=org, required=False)
    org.refresh_from_db()
    assert org.require_mfa is False


def test_an_outsider_cannot_change_our_requirement(pro, client_for, org, outsider):
    response = client_for(outsider, org_slug=org.slug).patch(
        "/api/v1/organization", {"require_mfa": True}, format="json"
    )
    assert response.status_code == 404
    org.refresh_from_db()
    assert org.require_mfa is False


def test_the_requirement_takes_a_json_boolean_only(pro, client_for, owner, org):
    for value in (0, 1, "true", None):
        response = client_for(owner).patch(
            "/api/v1/organization", {"require_mfa": value}, format="json"
        )
        assert response.status_code == 400, value
        assert response.json()["fields"]["require_mfa"]
    org.refresh_from_db()
    assert org.require_mfa is False
