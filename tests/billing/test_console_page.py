"""The console's Billing page against the fake Stripe API server (fakestripe.py; localstripe
has no Checkout or portal): owners and admins see the plan, the subscription and usage, start
a Checkout, open the portal, and come back to a page that waits for the webhook; members and
viewers are refused, another organization is a 404, and without Stripe the page says so."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.billing.models import BillingAccount
from apps.monitors.models import Monitor
from tests.billing.conftest import PRO_PRICE
from tests.billing.test_webhooks import session_completed
from tests.console import support
from tests.factories import MembershipFactory, make_monitor

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_ready(fake_stripe, priced_plans):
    return fake_stripe


def _page(client, org=None, path="/admin/billing/"):
    query = {"organization": str(org.pk)} if org else {}
    return client.get(path, query)


def test_an_owner_sees_the_plan_usage_and_plans_to_upgrade_to(stripe_ready, org, owner):
    make_monitor(org, "api")
    response = _page(support.login(owner))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="current-plan">Free<' in page
    usage = {row["key"]: row for row in response.context["usage"]}
    assert usage["monitors"]["used"] == 1
    assert usage["monitors"]["limit"] == 10  # the same report as GET /api/v1/usage
    assert usage["members"]["used"] == 1
    assert "Upgrade to Pro" in page
    assert "Upgrade to Business" in page
    assert 'id="billing-unconfigured"' not in page
    assert 'id="manage-billing"' not in page  # nothing to manage yet


def test_the_usage_is_the_apis(stripe_ready, org, owner, client_for):
    make_monitor(org, "api")
    api = client_for(owner).get("/api/v1/usage").json()["usage"]
    page = {row["key"]: row for row in _page(support.login(owner)).context["usage"]}
    assert {k: (v["used"], v["limit"]) for k, v in api.items()} == {
        k: (v["used"], v["limit"]) for k, v in page.items()
    }


def test_upgrade_goes_to_checkout_and_returns_to_the_consoles_page(stripe_ready, org, owner):
    client = support.login(owner)
    response = client.post("/admin/billing/upgrade/", {"organization": str(org.pk), "plan": "pro"})

    assert response.status_code == 302
    [session] = stripe_ready.objects["checkout_sessions"].values()
    assert response["Location"] == session["url"]
    assert session["line_items_price"] == PRO_PRICE
    assert session["client_reference_id"] == str(org.pk)
    assert session["success_url"] == (
        f"http://testserver/admin/billing/done/?organization={org.pk}"
        "&session_id={CHECKOUT_SESSION_ID}"
    )
    assert session["cancel_url"] == f"http://testserver/admin/billing/?organization={org.pk}"
    org.refresh_from_db()
    assert org.plan_id == "free"  # nothing changes before Stripe says it is paid


def test_the_return_page_waits_for_the_webhook_then_shows_the_new_plan(
    stripe_ready, org, owner, post_event
):
    client = support.login(owner)
    client.post("/admin/billing/upgrade/", {"organization": str(org.pk), "plan": "pro"})
    [session] = stripe_ready.objects["checkout_sessions"].values()
    done = f"/admin/billing/done/?organization={org.pk}&session_id={session['id']}"

    page = client.get(done)
    assert page.context["state"] == "pending"
    assert "Waiting for Stripe to confirm the payment" in page.content.decode()
    status = client.get(f"/admin/billing/done/?organization={org.pk}&part=status")
    assert 'data-state="pending"' in status.content.decode()
    assert "<html" not in status.content.decode()

    sub = stripe_ready.put_subscription(customer=session["customer"], price=PRO_PRICE)
    assert (
        post_event(
            "checkout.session.completed", session_completed(org, session["customer"], sub["id"])
        ).status_code
        == 200
    )

    status = client.get(f"/admin/billing/done/?organization={org.pk}&part=status").content.decode()
    assert 'data-state="done"' in status
    assert 'id="new-plan">Pro<' in status
    billing = _page(client, org)
    assert 'id="current-plan">Pro<' in billing.content.decode()
    assert 'id="manage-billing"' in billing.content.decode()
    assert "Upgrade to Business" not in billing.content.decode()  # the portal changes plans


def test_manage_billing_goes_to_the_portal(stripe_ready, org, owner, post_event):
    client = support.login(owner)
    client.post("/admin/billing/upgrade/", {"organization": str(org.pk), "plan": "pro"})
    [session] = stripe_ready.objects["checkout_sessions"].values()
    sub = stripe_ready.put_subscription(customer=session["customer"], price=PRO_PRICE)
    post_event("checkout.session.completed", session_completed(org, session["customer"], sub["id"]))

    response = client.post("/admin/billing/portal/", {"organization": str(org.pk)})

    assert response.status_code == 302
    [portal] = stripe_ready.objects["portal_sessions"].values()
    assert response["Location"] == portal["url"]
    assert portal["return_url"] == f"http://testserver/admin/billing/?organization={org.pk}"


def test_without_stripe_the_page_says_so_and_shows_the_plan(org, owner, settings):
    settings.STRIPE_TEST_SECRET_KEY = ""
    settings.STRIPE_LIVE_SECRET_KEY = ""
    client = support.login(owner)
    page = _page(client).content.decode()
    assert 'id="billing-unconfigured"' in page
    assert 'id="current-plan">Free<' in page
    assert "Upgrade to" not in page
    response = client.post("/admin/billing/upgrade/", {"organization": str(org.pk), "plan": "pro"})
    assert response.status_code == 302
    messages = [str(m) for m in client.get(response["Location"]).context["messages"]]
    assert any("billing not configured" in m for m in messages)


def test_stripe_down_is_a_message_not_an_error_page(stripe_ready, org, owner):
    stripe_ready.fail_with = 500
    client = support.login(owner)
    response = client.post("/admin/billing/upgrade/", {"organization": str(org.pk), "plan": "pro"})
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/billing/")
    messages = [str(m) for m in client.get(response["Location"]).context["messages"]]
    assert any(m.startswith("No checkout was started") for m in messages)


def test_an_admin_may_and_a_member_or_viewer_may_not(stripe_ready, org, admin_user, member, viewer):
    assert _page(support.login(admin_user)).status_code == 200
    for user in (member, viewer):
        client = support.login(user)
        assert _page(client).status_code == 403
        post = client.post("/admin/billing/upgrade/", {"organization": str(org.pk), "plan": "pro"})
        assert post.status_code == 403
        assert (
            client.post("/admin/billing/portal/", {"organization": str(org.pk)}).status_code == 403
        )
    assert stripe_ready.requests == []


def test_another_organizations_billing_is_404(stripe_ready, org, outsider):
    client = support.login(outsider)
    for path in ("/admin/billing/", "/admin/billing/done/"):
        assert _page(client, org, path).status_code == 404, path
    for path in ("/admin/billing/upgrade/", "/admin/billing/portal/"):
        response = client.post(path, {"organization": str(org.pk), "plan": "pro"})
        assert response.status_code == 404, path
    assert stripe_ready.requests == []
    assert not BillingAccount.objects.filter(organization=org).exists()


def test_a_manager_of_two_organizations_chooses_one(stripe_ready, org, other_org, owner):
    MembershipFactory(organization=other_org, user=owner, role="admin")
    client = support.login(owner)
    response = _page(client)
    assert response.status_code == 200
    assert {o.pk for o in response.context["choices"]} == {org.pk, other_org.pk}
    assert _page(client, other_org).context["org"] == other_org


def test_the_page_costs_the_same_queries_with_more_monitors(stripe_ready, org, owner):
    client = support.login(owner)
    make_monitor(org, "first")
    _page(client)
    with CaptureQueriesContext(connection) as before:
        _page(client)
    for i in range(5):
        make_monitor(org, f"more-{i}")
    with CaptureQueriesContext(connection) as after:
        _page(client)
    assert len(after) == len(before)
    assert Monitor.objects.filter(organization=org).count() == 6


def test_the_header_links_owners_to_billing_and_not_members(org, owner, member):
    assert 'id="billing-link"' in support.login(owner).get("/admin/").content.decode()
    assert 'id="billing-link"' not in support.login(member).get("/admin/").content.decode()
