"""Becoming a customer in the browser's forms: sign up, verify the email through a real SMTP
server, and land in the console with an organization of one's own (free plan, owner)."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.test import Client

from apps.tenants.models import Membership, Role
from tests.accounts.helpers import body_of, link_in, messages_to
from tests.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a long and unusual pass phrase 7"


def _sign_up(client: Client, email: str, organization: str = "") -> object:
    return client.post(
        "/accounts/signup/",
        {
            "email": email,
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
            "organization": organization,
        },
    )


def _confirm(client: Client, mailbox, email: str):
    (message,) = messages_to(mailbox, email)
    assert "Confirm" in message["Subject"] or "confirm" in message["Subject"].lower()
    path = urlparse(link_in(message, "/accounts/confirm-email/")).path
    assert client.get(path).status_code == 200  # a page with a button: a GET confirms nothing
    return client.post(path)


def test_sign_up_sends_a_real_email_and_confirming_it_lands_in_the_console(mailbox):
    client = Client()
    response = _sign_up(client, "Ada@Example.test", organization="Analytical Engines")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    # Not signed in, and no organization yet: the address is not proven.
    assert client.get("/admin/").status_code == 302
    assert not Membership.objects.filter(user__email="ada@example.test").exists()

    confirmed = _confirm(client, mailbox, "ada@example.test")
    assert confirmed.status_code == 302
    assert confirmed["Location"] == "/admin/"
    membership = Membership.objects.select_related("organization", "user").get(
        user__email="ada@example.test"
    )
    assert membership.role == Role.OWNER
    assert membership.organization.name == "Analytical Engines"
    assert membership.organization.plan_id == "free"
    assert membership.user.username == "ada@example.test"  # the email is the username
    assert client.get("/admin/").status_code == 200


def test_signing_in_before_verifying_sends_the_link_again_and_lets_nobody_in(mailbox):
    _sign_up(Client(), "bob@example.test")
    other = Client()
    response = other.post(
        "/accounts/login/", {"login": "bob@example.test", "password": NEW_PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    assert "_auth_user_id" not in other.session
    # The link is not sent again within allauth's cool-down: one mail so far.
    assert len(messages_to(mailbox, "bob@example.test")) == 1


def test_confirming_from_another_browser_then_signing_in_makes_the_organization(mailbox):
    _sign_up(Client(), "cy@example.test")
    elsewhere = Client()
    _confirm(elsewhere, mailbox, "cy@example.test")
    assert "_auth_user_id" not in elsewhere.session  # confirming elsewhere signs nobody in
    response = elsewhere.post(
        "/accounts/login/", {"login": "cy@example.test", "password": NEW_PASSWORD}
    )
    assert response["Location"] == "/admin/"
    org = Membership.objects.get(user__email="cy@example.test").organization
    assert org.name == "cy's organization"  # the name typed at sign-up stayed in the other browser


def test_an_address_already_used_cannot_sign_up_again(mailbox, owner):
    response = _sign_up(Client(), owner.email)
    # Answered as for a new address (no enumeration); the owner is mailed instead.
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    assert get_user_model().objects.filter(email__iexact=owner.email).count() == 1
    (message,) = messages_to(mailbox, owner.email)
    assert "already" in body_of(message).lower() or "already" in message["Subject"].lower()


def test_the_login_form_asks_for_an_email_not_a_username():
    page = Client().get("/accounts/login/").content.decode()
    assert 'type="email"' in page
    assert "Username" not in page


def test_the_consoles_login_address_leads_to_the_one_sign_in():
    response = Client().get("/admin/login/?next=/admin/monitors/monitor/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=%2Fadmin%2Fmonitors%2Fmonitor%2F"
    outside = Client().get("/admin/login/?next=https://evil.example/")
    assert outside["Location"] == "/accounts/login/?next=%2Fadmin%2F"


def test_a_member_made_through_the_api_verifies_the_email_at_the_first_browser_sign_in(mailbox):
    api = Client()
    made = api.post(
        "/api/v1/auth/register",
        {"email": "dee@example.test", "password": NEW_PASSWORD, "organization": "Dee Co"},
        content_type="application/json",
    )
    assert made.status_code == 201  # the API's flow is unchanged: a token at once
    browser = Client()
    response = browser.post(
        "/accounts/login/", {"login": "dee@example.test", "password": NEW_PASSWORD}
    )
    assert response["Location"] == "/accounts/confirm-email/"
    _confirm(browser, mailbox, "dee@example.test")
    # The organization made by the API is theirs; no second one is made.
    assert Membership.objects.filter(user__email="dee@example.test").count() == 1


def test_an_operator_gets_no_organization_of_their_own():
    operator = UserFactory(is_staff=True, is_superuser=True)
    EmailAddress.objects.create(user=operator, email=operator.email, verified=True, primary=True)
    client = Client()
    response = client.post("/accounts/login/", {"login": operator.email, "password": PASSWORD})
    assert response["Location"] == "/admin/"
    assert not Membership.objects.filter(user=operator).exists()


def test_an_existing_member_signs_in_and_keeps_their_one_organization(org):
    member = MembershipFactory(organization=org, role=Role.MEMBER).user
    EmailAddress.objects.create(user=member, email=member.email, verified=True, primary=True)
    client = Client()
    response = client.post("/accounts/login/", {"login": member.email, "password": PASSWORD})
    assert response["Location"] == "/admin/"
    assert list(Membership.objects.filter(user=member).values_list("organization", flat=True)) == [
        org.pk
    ]


def test_password_reset_goes_by_real_email_and_the_new_password_works(mailbox, org):
    member = MembershipFactory(organization=org).user
    EmailAddress.objects.create(user=member, email=member.email, verified=True, primary=True)
    client = Client()
    assert client.post("/accounts/password/reset/", {"email": member.email}).status_code == 302
    (message,) = messages_to(mailbox, member.email)
    path = urlparse(link_in(message, "/accounts/password/reset/key/")).path
    form = client.get(path, follow=True)
    action = form.redirect_chain[-1][0] if form.redirect_chain else path
    done = client.post(action, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert done.status_code == 302
    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)


def test_a_signed_in_member_changes_their_password(org):
    member = MembershipFactory(organization=org).user
    client = Client()
    client.force_login(member)
    response = client.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    member.refresh_from_db()
    assert member.check_password(NEW_PASSWORD)


def test_logging_out_ends_the_session(org):
    member = MembershipFactory(organization=org).user
    client = Client()
    client.force_login(member)
    assert client.post("/accounts/logout/").status_code == 302
    assert "_auth_user_id" not in client.session
