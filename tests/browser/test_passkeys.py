"""A security key as the second factor, in a real browser: Chromium's virtual authenticator
(the DevTools protocol's WebAuthn domain, nothing outside the machine) stands in for the
key. A member adds it and signs in with it. Screenshots at 1440 and 390 px in
artifacts/browser/accounts/."""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator

from apps.tenants.models import Role
from tests.browser.test_accounts import PASSWORD, shoot
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_member_adds_a_security_key_and_signs_in_with_it(page, live_server, admin_login):
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    org = OrganizationFactory(name="Acme", slug="acme")
    member = MembershipFactory(organization=org, role=Role.MEMBER).user
    admin_login(page, member, password=PASSWORD)
    page.wait_for_url(f"{live_server.url}/admin/")

    page.goto(f"{live_server.url}/accounts/2fa/webauthn/add/")
    if "/accounts/reauthenticate/" in page.url:
        page.fill("#id_password", PASSWORD)
        page.locator("form button[type=submit]").click()
        page.wait_for_url(f"{live_server.url}/accounts/2fa/webauthn/add/**")
    page.fill("input[name=name]", "desk key")
    shoot(page, "passkey-add")
    page.locator("#mfa_webauthn_add").click()
    page.wait_for_url(lambda url: "/webauthn/add/" not in url)
    assert Authenticator.objects.filter(user=member, type="webauthn").count() == 1

    page.context.clear_cookies()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_login", member.email)
    page.fill("#id_password", PASSWORD)
    page.locator("form button[type=submit]").first.click()
    page.wait_for_url(f"{live_server.url}/accounts/2fa/authenticate/**")
    shoot(page, "passkey-sign-in")
    page.locator("#mfa_webauthn_authenticate").click()
    page.wait_for_url(f"{live_server.url}/admin/")
    assert page.locator("#logout-form").count() == 1
