"""Accounts in a real browser, each journey leaving screenshots at 1440 and 390 px wide in
artifacts/browser/accounts/: sign up, verify the email (a real SMTP server takes the mail),
land in the console with an organization; an owner invites someone who signs up through the
link and joins; a member sets up TOTP and signs in with it."""

from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest
import time_machine

from apps.tenants.models import Membership, Role
from tests.accounts.helpers import link_in, messages_to
from tests.accounts.totp import code_for
from tests.browser.conftest import ARTIFACTS
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)

SHOTS = ARTIFACTS / "accounts"
PASSWORD = "a long and unusual pass phrase 7"


def shoot(page, name: str) -> None:
    """The page as it is, at a desktop and a phone width, then back to the desktop."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1440, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1440, "height": 900})


def _no_horizontal_scroll(page) -> None:
    page.set_viewport_size({"width": 390, "height": 900})
    wide = page.evaluate("document.documentElement.scrollWidth")
    page.set_viewport_size({"width": 1440, "height": 900})
    assert wide <= 390, f"the page is {wide} px wide on a 390 px screen"


def test_a_visitor_signs_up_verifies_the_email_and_lands_in_the_console(page, live_server, mailbox):
    page.goto(f"{live_server.url}/")
    assert page.locator("h1").inner_text() == "Know first. Fix faster."
    assert page.locator("#plan-business").is_visible()
    _no_horizontal_scroll(page)
    shoot(page, "landing")

    page.get_by_role("link", name="Sign up free", exact=True).click()
    page.wait_for_url(f"{live_server.url}/accounts/signup/")
    page.fill("#id_email", "ada@example.test")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.fill("#id_organization", "Analytical Engines")
    shoot(page, "signup")
    page.locator("form button[type=submit]").click()
    page.wait_for_url(f"{live_server.url}/accounts/confirm-email/")
    assert "ada@example.test" in page.locator("main").inner_text()
    shoot(page, "verification-sent")

    (message,) = messages_to(mailbox, "ada@example.test")
    page.goto(live_server.url + urlparse(link_in(message, "/accounts/confirm-email/")).path)
    shoot(page, "confirm-email")
    page.locator("form button[type=submit]").click()
    page.wait_for_url(f"{live_server.url}/admin/")
    assert page.locator("#logout-form").count() == 1
    shoot(page, "console-after-signup")
    membership = Membership.objects.select_related("organization").get(
        user__email="ada@example.test"
    )
    assert membership.role == Role.OWNER
    assert membership.organization.name == "Analytical Engines"
    assert membership.organization.plan_id == "free"


def test_an_owner_invites_someone_who_signs_up_through_the_link_and_joins(
    page, browser, live_server, admin_login, mailbox
):
    org = OrganizationFactory(name="Acme", slug="acme")
    owner = MembershipFactory(organization=org, role=Role.OWNER).user
    admin_login(page, owner)
    page.wait_for_url(f"{live_server.url}/admin/")
    page.goto(f"{live_server.url}/admin/tenants/invitation/add/")
    page.select_option("#id_organization", label="Acme")
    page.fill("#id_email", "grace@example.test")
    page.select_option("#id_role", "admin")
    shoot(page, "invite")
    page.click("input[name=_save]")
    assert "grace@example.test" in page.locator("#result_list").inner_text()

    (message,) = messages_to(mailbox, "grace@example.test")
    assert "Acme" in message["Subject"]
    invitee = browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        other = invitee.new_page()
        other.goto(live_server.url + urlparse(link_in(message, "/accounts/invitations/")).path)
        assert "Join Acme" in other.locator("h1").inner_text()
        shoot(other, "invitation")
        other.get_by_role("link", name="Create an account").click()
        other.fill("#id_password1", PASSWORD)
        other.fill("#id_password2", PASSWORD)
        assert other.input_value("#id_email") == "grace@example.test"
        other.locator("form button[type=submit]").click()
        other.wait_for_url(f"{live_server.url}/admin/")
        shoot(other, "console-after-invitation")
    finally:
        invitee.close()
    joined = Membership.objects.get(user__email="grace@example.test")
    assert (joined.organization_id, joined.role) == (org.pk, Role.ADMIN)


def test_a_member_sets_up_totp_and_signs_in_with_it(page, live_server, admin_login):
    org = OrganizationFactory(name="Acme", slug="acme")
    member = MembershipFactory(organization=org, role=Role.MEMBER).user
    admin_login(page, member, password=PASSWORD)
    page.wait_for_url(f"{live_server.url}/admin/")

    page.goto(f"{live_server.url}/accounts/2fa/totp/activate/")
    if "/accounts/reauthenticate/" in page.url:  # allauth asks for the password again first
        page.fill("#id_password", PASSWORD)
        page.locator("form button[type=submit]").click()
        page.wait_for_url(f"{live_server.url}/accounts/2fa/totp/activate/")
    shoot(page, "totp-activate")
    secret = page.input_value("#authenticator_secret")
    page.fill("#id_code", code_for(secret))
    page.locator("form button[type=submit]").click()
    page.wait_for_url(f"{live_server.url}/accounts/2fa/recovery-codes/**")
    shoot(page, "recovery-codes")

    page.context.clear_cookies()
    page.goto(f"{live_server.url}/admin/")
    page.wait_for_url(f"{live_server.url}/accounts/login/**")
    page.fill("#id_login", member.email)
    page.fill("#id_password", PASSWORD)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(f"{live_server.url}/accounts/2fa/authenticate/**")
    shoot(page, "totp-sign-in")
    # The set-up code may not be used twice: sign in with the next period's.
    with time_machine.travel(time.time() + 30):
        page.fill("#id_code", code_for(secret))
        page.locator("form button[type=submit]").click()
        page.wait_for_url(f"{live_server.url}/admin/")
    assert page.locator("#logout-form").count() == 1
