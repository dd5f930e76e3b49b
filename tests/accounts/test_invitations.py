"""Invitations: an owner or admin invites by email (a real SMTP server takes the mail), the
invitee signs up or signs in through the link and joins with the invited role; used, expired,
revoked and other people's invitations are refused."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlparse

import pytest
from allauth.account.models import EmailAddress
from django.test import Client
from django.utils import timezone

from apps.tenants import services
from apps.tenants.models import Invitation, Membership, Role
from tests.accounts.helpers import link_in, messages_to
from tests.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "a long and unusual pass phrase 7"


def _invite(client, email: str, role: str = "member"):
    return client.post("/api/v1/invitations/", {"email": email, "role": role}, format="json")


def _link_path(mailbox, email: str) -> str:
    (message,) = messages_to(mailbox, email)
    return urlparse(link_in(message, "/accounts/invitations/")).path


def test_an_admin_invites_by_email_and_a_new_person_signs_up_and_joins(
    client_for, admin_user, org, mailbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = _invite(client_for(admin_user), "Newcomer@Example.test", role="viewer")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["email"] == "newcomer@example.test"
    assert body["state"] == "pending"
    assert "token" not in body  # the link's token only ever travels in the email

    path = _link_path(mailbox, "newcomer@example.test")
    browser = Client()
    page = browser.get(path)
    assert page.status_code == 200
    assert "Acme" in page.content.decode()
    signup = browser.post(
        "/accounts/signup/",
        {"email": "newcomer@example.test", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    # The link came to this address: no second mail to verify it, straight into the console.
    assert signup["Location"] == "/admin/"
    assert len(messages_to(mailbox, "newcomer@example.test")) == 1
    membership = Membership.objects.get(user__email="newcomer@example.test")
    assert (membership.organization_id, membership.role) == (org.pk, Role.VIEWER)
    assert Membership.objects.filter(user__email="newcomer@example.test").count() == 1
    assert Invitation.objects.get().state == "accepted"
    assert browser.get(path).status_code == 410  # used up


def test_an_existing_user_signs_in_through_the_link_and_joins(org, owner, other_org, outsider):
    EmailAddress.objects.create(user=outsider, email=outsider.email, verified=True, primary=True)
    issued = services.invitation_create(
        org=org,
        email=outsider.email,
        role=Role.ADMIN,
        actor_role=Role.OWNER,
        invited_by=owner,
        base_url="http://testserver",
    )
    browser = Client()
    browser.get(urlparse(issued.link).path)
    response = browser.post("/accounts/login/", {"login": outsider.email, "password": PASSWORD})
    assert response["Location"] == "/admin/"
    roles = dict(Membership.objects.filter(user=outsider).values_list("organization", "role"))
    assert roles == {other_org.pk: Role.OWNER, org.pk: Role.ADMIN}


def test_a_signed_in_user_joins_with_the_button(org, owner, outsider):
    issued = services.invitation_create(
        org=org,
        email=outsider.email,
        role=Role.MEMBER,
        actor_role=Role.OWNER,
        invited_by=owner,
        base_url="http://testserver",
    )
    browser = Client()
    browser.force_login(outsider)
    path = urlparse(issued.link).path
    assert "Join Acme" in browser.get(path).content.decode()
    assert browser.post(path)["Location"] == "/admin/"
    assert Membership.objects.filter(organization=org, user=outsider, role="member").exists()


def test_someone_else_signed_in_cannot_use_the_link(org, owner):
    stranger = UserFactory(email="stranger@example.test")
    issued = services.invitation_create(
        org=org,
        email="invited@example.test",
        role=Role.MEMBER,
        actor_role=Role.OWNER,
        invited_by=owner,
        base_url="http://testserver",
    )
    browser = Client()
    browser.force_login(stranger)
    response = browser.post(urlparse(issued.link).path)
    assert response.status_code == 409
    assert "invited@example.test" in response.content.decode()
    assert not Membership.objects.filter(organization=org, user=stranger).exists()
    assert Invitation.objects.get().state == "pending"


@pytest.mark.parametrize("how", ["expired", "revoked", "unknown"])
def test_expired_revoked_and_unknown_links_are_refused(org, owner, outsider, how):
    issued = services.invitation_create(
        org=org,
        email=outsider.email,
        role=Role.MEMBER,
        actor_role=Role.OWNER,
        invited_by=owner,
        base_url="http://testserver",
    )
    path = urlparse(issued.link).path
    if how == "expired":
        Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    elif how == "revoked":
        services.invitation_revoke(invitation=issued.invitation)
    else:
        path = "/accounts/invitations/not-a-real-token/"
    browser = Client()
    browser.force_login(outsider)
    response = browser.post(path)
    assert response.status_code == (404 if how == "unknown" else 410)
    assert not Membership.objects.filter(organization=org, user=outsider).exists()


def test_members_and_viewers_cannot_invite(client_for, member, viewer):
    for user in (member, viewer):
        response = _invite(client_for(user), "x@example.test")
        assert response.status_code == 403
        assert response["Content-Type"] == "application/json"


def test_only_owners_invite_owners(client_for, admin_user, owner):
    refused = _invite(client_for(admin_user), "boss@example.test", role="owner")
    assert refused.status_code == 400
    assert refused.json()["fields"]["role"] == ["Only an owner can invite another owner."]
    assert _invite(client_for(owner), "boss@example.test", role="owner").status_code == 201


def test_bad_input_gets_the_one_json_error_shape(client_for, owner):
    client = client_for(owner)
    for body in ({"email": "not-an-email"}, {"email": "a@example.test", "role": "god"}, {}):
        response = client.post("/api/v1/invitations/", body, format="json")
        assert response.status_code == 400
        assert response["Content-Type"] == "application/json"
    assert _invite(client, "dup@example.test").status_code == 201
    again = _invite(client, "dup@example.test")
    assert again.status_code == 400
    assert "pending invitation" in again.content.decode()
    member_email = MembershipFactory(organization=owner.memberships.get().organization).user.email
    assert _invite(client, member_email).status_code == 400


def test_an_invitation_is_refused_when_the_plan_has_no_room(client_for, owner, org):
    for _ in range(2):  # the free plan allows 3 members; the owner is one
        MembershipFactory(organization=org)
    response = _invite(client_for(owner), "fourth@example.test")
    assert response.status_code == 402


def test_an_outsider_cannot_list_read_or_revoke_our_invitations(client_for, owner, outsider):
    made = _invite(client_for(owner), "ours@example.test").json()
    theirs = client_for(outsider)
    assert "ours@example.test" not in theirs.get("/api/v1/invitations/").content.decode()
    assert theirs.get(f"/api/v1/invitations/{made['id']}/").status_code == 404
    assert theirs.delete(f"/api/v1/invitations/{made['id']}/").status_code == 404
    assert Invitation.objects.get(pk=made["id"]).state == "pending"


def test_revoking_stops_the_link(client_for, owner):
    client = client_for(owner)
    made = _invite(client, "gone@example.test").json()
    assert client.delete(f"/api/v1/invitations/{made['id']}/").status_code == 204
    assert client.get(f"/api/v1/invitations/{made['id']}/").json()["state"] == "revoked"


def test_listing_invitations_costs_the_same_for_many(client_for, owner):
    client = client_for(owner)
    _invite(client, "one@example.test")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        client.get("/api/v1/invitations/")
    for n in range(5):
        _invite(client, f"more{n}@example.test")
    with CaptureQueriesContext(connection) as six:
        assert len(client.get("/api/v1/invitations/").json()["results"]) == 6
    assert len(six) == len(one)


def test_the_api_keeps_adding_existing_members(client_for, owner, outsider):
    response = client_for(owner).post(
        "/api/v1/members/", {"email": outsider.email, "role": "member"}, format="json"
    )
    assert response.status_code == 201
