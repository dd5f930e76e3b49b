"""Single sign-on in a real browser, against a real OpenID Connect provider on 127.0.0.1
(oidc-provider-mock): a person of the organization's verified domain goes from the sign-in
page through the provider's form into the console, as a member. Screenshots at 1440 and 390
px in artifacts/browser/accounts/.

The provider's own page asks a CDN for its stylesheet: every request the browser makes to a
host other than 127.0.0.1 is aborted before it leaves (Playwright's routing), so nothing goes
out."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from apps.accounts import services
from apps.plans.services import organization_change_plan
from apps.tenants.models import Membership, Role
from tests.accounts.oidc import serve_oidc_provider
from tests.browser.test_accounts import shoot
from tests.factories import OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _loopback_only(route) -> None:
    if urlparse(route.request.url).hostname == "127.0.0.1":
        route.continue_()
    else:
        route.abort()


def test_a_person_of_the_verified_domain_signs_in_through_the_organizations_provider(
    page, live_server
):
    org = OrganizationFactory(name="Acme", slug="acme")
    organization_change_plan(org=org, plan_code="business", source="test")
    page.context.route("**/*", _loopback_only)
    with serve_oidc_provider() as issuer:
        sso = services.sso_configure(
            org=org,
            issuer=issuer,
            client_id="healthorch",
            client_secret="s3cret",
            domain="acme.test",
        )
        services.sso_verify_domain(sso=sso)
        # Django's live server says "localhost"; the provider must send the browser back to
        # the address it came from.
        base = live_server.url.replace("localhost", "127.0.0.1")
        page.goto(f"{base}/accounts/login/")
        page.get_by_role("link", name="Single sign-on").click()
        page.fill("#id_sso_email", "ada@acme.test")
        page.locator("form button[type=submit]").click()
        shoot(page, "sso")
        page.get_by_role("button", name="Continue to Acme's sign-in").click()
        page.wait_for_url(f"{issuer}/**")
        page.fill("input[name=sub][type=text]", "ada@acme.test")
        page.get_by_role("button", name="Authorize").click()
        page.wait_for_url(f"{base}/admin/")
        assert page.locator("#logout-form").count() == 1
        shoot(page, "console-after-sso")
    membership = Membership.objects.get(user__email="ada@acme.test")
    assert (membership.organization_id, membership.role) == (org.pk, Role.MEMBER)
