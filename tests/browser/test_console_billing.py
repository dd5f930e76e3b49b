"""An owner upgrades in the browser: the Billing page, Upgrade to Pro, Stripe Checkout, back to
the console's page that waits for the webhook, and the plan changes on it without a reload.

Stripe is the fake API server the billing tests use (tests/billing/fakestripe.py: Checkout
Sessions, the portal and subscriptions in the current API shape; localstripe has none of them).
Its Checkout URL is on a host of its own; the browser never goes there: Playwright answers that
navigation itself with a stand-in page, so no request leaves the machine. The payment's webhook
is posted signed exactly as Stripe signs it. Screenshots at 1440 and 390 px."""

from __future__ import annotations

import pytest

from apps.tenants.models import Role
from tests.billing.conftest import (  # noqa: F401
    PRO_PRICE,
    fake_stripe,
    post_event,
    priced_plans,
    stripe_server,
)
from tests.billing.test_webhooks import session_completed
from tests.factories import MembershipFactory, OrganizationFactory

pytestmark = pytest.mark.django_db(transaction=True)

STAND_IN = "<html><body><h1>Stripe Checkout (test stand-in)</h1></body></html>"


@pytest.mark.usefixtures("priced_plans")
def test_an_owner_upgrades_through_checkout_and_sees_the_plan_change(
    page, live_server, admin_login, shoot, request
):
    stripe = request.getfixturevalue("fake_stripe")
    post = request.getfixturevalue("post_event")
    acme = OrganizationFactory(name="Acme", slug="acme")
    owner = MembershipFactory(organization=acme, role=Role.OWNER).user
    page.route(
        "https://checkout.stripe.test/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body=STAND_IN),
    )
    admin_login(page, owner)
    page.wait_for_url(f"{live_server.url}/admin/")

    page.click("#billing-link")
    assert page.locator("#current-plan").inner_text() == "Free"
    assert page.locator("#usage-table tr[data-usage=monitors]").count() == 1
    shoot(page, "billing-free")

    page.click("input[value='Upgrade to Pro']")
    page.wait_for_url("https://checkout.stripe.test/**")
    [session] = stripe.objects["checkout_sessions"].values()
    assert page.url == session["url"]

    # Stripe sends the customer back to the success URL the console gave it.
    page.goto(session["success_url"].replace("{CHECKOUT_SESSION_ID}", session["id"]))
    status = page.locator("#billing-status")
    assert status.get_attribute("data-state") == "pending"
    assert "Waiting for Stripe" in status.inner_text()
    shoot(page, "billing-pending")

    sub = stripe.put_subscription(customer=session["customer"], price=PRO_PRICE)
    response = post(
        "checkout.session.completed", session_completed(acme, session["customer"], sub["id"])
    )
    assert response.status_code == 200

    page.wait_for_selector("#billing-status[data-state=done]", timeout=15_000)
    assert page.locator("#new-plan").inner_text() == "Pro"
    shoot(page, "billing-done")

    page.click("text=Back to billing")
    assert page.locator("#current-plan").inner_text() == "Pro"
    assert page.locator("#subscription-status").inner_text().startswith("Active")
    assert page.locator("#manage-billing").is_visible()
    shoot(page, "billing-pro")
