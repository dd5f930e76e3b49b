"""POST /billing/upgrade and /billing/portal against the fake Stripe API server (fakestripe.py:
localstripe has no Checkout Sessions or Billing Portal), through the real stripe library."""

from __future__ import annotations

import pytest
from django.conf import settings
from djstripe.models import Customer, IdempotencyKey

from apps.billing.models import BillingAccount
from apps.plans.models import PlanChange
from tests.billing.conftest import PRO_PRICE
from tests.monitors.targets import closed_port


@pytest.fixture
def stripe_ready(fake_stripe, priced_plans):
    return fake_stripe


def test_an_owner_gets_a_checkout_link_for_the_pro_price(stripe_ready, org, owner, client_for):
    response = client_for(owner).post("/billing/upgrade", {"plan": "pro"}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    session = stripe_ready.objects["checkout_sessions"][body["session_id"]]
    assert body["checkout_url"] == session["url"]
    assert session["mode"] == "subscription"
    assert session["line_items_price"] == PRO_PRICE
    assert session["client_reference_id"] == str(org.pk)
    assert session["success_url"] == settings.BILLING_SUCCESS_URL
    assert session["cancel_url"] == settings.BILLING_CANCEL_URL
    customer = Customer.objects.get(subscriber=org)
    assert session["customer"] == customer.id
    org.refresh_from_db()
    assert org.plan_id == "free"  # nothing is paid until Stripe says so


def test_the_customer_is_created_once(stripe_ready, org, owner, client_for):
    client = client_for(owner)
    first = client.post("/billing/upgrade", {"plan": "pro"}, format="json")
    second = client.post("/billing/upgrade", {"plan": "business"}, format="json")

    assert first.status_code == second.status_code == 200
    assert len(stripe_ready.calls("POST", "/v1/customers")) == 1
    assert Customer.objects.filter(subscriber=org).count() == 1


def test_an_admin_and_a_write_key_may_upgrade(
    stripe_ready, org, admin_user, client_for, key_client
):
    assert (
        client_for(admin_user).post("/billing/upgrade", {"plan": "pro"}, format="json").status_code
        == 200
    )
    assert (
        key_client(org).post("/billing/upgrade", {"plan": "pro"}, format="json").status_code == 200
    )


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_a_member_or_viewer_cannot_upgrade(stripe_ready, request, role, client_for):
    user = request.getfixturevalue(role)
    response = client_for(user).post("/billing/upgrade", {"plan": "pro"}, format="json")

    assert response.status_code == 403
    assert stripe_ready.requests == []


def test_a_read_key_cannot_upgrade(stripe_ready, org, key_client):
    response = key_client(org, scopes=("read",)).post(
        "/billing/upgrade", {"plan": "pro"}, format="json"
    )
    assert response.status_code == 403


def test_an_outsider_cannot_upgrade_another_organization(stripe_ready, org, outsider, client_for):
    response = client_for(outsider, org_slug=org.slug).post(
        "/billing/upgrade", {"plan": "pro"}, format="json"
    )

    assert response.status_code == 404
    assert stripe_ready.requests == []
    assert not Customer.objects.filter(subscriber=org).exists()


def test_an_outsider_cannot_open_another_organizations_portal_or_billing(
    stripe_ready, org, outsider, client_for
):
    client = client_for(outsider, org_slug=org.slug)
    assert client.post("/billing/portal").status_code == 404
    assert client.get("/api/v1/billing").status_code == 404


@pytest.mark.parametrize("plan", ["free", "platinum", ""])
def test_the_free_plan_or_an_unknown_plan_is_a_400(stripe_ready, owner, client_for, plan):
    response = client_for(owner).post("/billing/upgrade", {"plan": plan}, format="json")

    assert response.status_code == 400
    assert "plan" in response.json()["fields"]
    assert stripe_ready.requests == []


def test_an_unknown_field_is_a_400(stripe_ready, owner, client_for):
    response = client_for(owner).post(
        "/billing/upgrade", {"plan": "pro", "price": "price_cheap"}, format="json"
    )
    assert response.status_code == 400
    assert "price" in response.json()["fields"]


def test_a_plan_without_a_stripe_price_is_a_409_naming_sync_plans(fake_stripe, owner, client_for):
    response = client_for(owner).post("/billing/upgrade", {"plan": "pro"}, format="json")

    assert response.status_code == 409
    assert "sync_plans" in response.json()["detail"]
    assert fake_stripe.requests == []


def test_stripe_unreachable_is_a_503_and_nothing_is_stored(
    stripe_ready, org, owner, client_for, monkeypatch
):
    import stripe

    with closed_port() as port:
        monkeypatch.setattr(stripe, "api_base", f"http://127.0.0.1:{port}")
        response = client_for(owner).post("/billing/upgrade", {"plan": "pro"}, format="json")

    assert response.status_code == 503
    assert response.json()["code"] == "stripe_unavailable"
    assert not Customer.objects.exists()
    assert not IdempotencyKey.objects.exists()
    assert not BillingAccount.objects.exists()
    assert not PlanChange.objects.filter(organization=org).exists()


def test_stripe_erroring_on_checkout_is_a_503_and_no_checkout_state_is_stored(
    stripe_ready, org, owner, client_for
):
    client = client_for(owner)
    client.post("/billing/portal")  # the customer now exists
    stripe_ready.fail_with = 500
    response = client.post("/billing/upgrade", {"plan": "pro"}, format="json")

    assert response.status_code == 503
    assert not BillingAccount.objects.filter(organization=org).exists()
    org.refresh_from_db()
    assert org.plan_id == "free"


def test_an_organization_already_paying_is_sent_to_the_portal(stripe_ready, org, owner, client_for):
    BillingAccount.objects.create(organization=org, status="active", subscription_id="sub_x")
    response = client_for(owner).post("/billing/upgrade", {"plan": "business"}, format="json")

    assert response.status_code == 409
    assert "portal" in response.json()["detail"]


def test_the_portal_returns_a_stripe_portal_link(stripe_ready, org, owner, client_for):
    response = client_for(owner).post("/billing/portal")

    assert response.status_code == 200
    [session] = stripe_ready.objects["portal_sessions"].values()
    assert response.json() == {"portal_url": session["url"]}
    assert session["customer"] == Customer.objects.get(subscriber=org).id


def test_a_member_cannot_open_the_portal(stripe_ready, member, client_for):
    assert client_for(member).post("/billing/portal").status_code == 403


def test_billing_shows_the_plan_and_subscription(stripe_ready, org, viewer, client_for):
    response = client_for(viewer).get("/api/v1/billing")

    assert response.status_code == 200
    assert response.json() == {
        "plan": "free",
        "subscription_status": None,
        "subscription_plan": None,
        "current_period_end": None,
        "cancel_at_period_end": False,
        "grace_until": None,
        "comp": None,
    }


def test_without_stripe_keys_billing_answers_503_and_the_rest_works(
    settings, org, owner, client_for
):
    settings.STRIPE_TEST_SECRET_KEY = ""
    client = client_for(owner)
    for response in (
        client.post("/billing/upgrade", {"plan": "pro"}, format="json"),
        client.post("/billing/portal"),
        client.get("/api/v1/billing"),
        client.post("/billing/webhook", data="{}", content_type="application/json"),
    ):
        assert response.status_code == 503
        assert "billing not configured" in response.json()["detail"]
    assert client.get("/api/v1/organization").status_code == 200
    assert client.get("/api/v1/usage").status_code == 200


def test_billing_shows_an_active_comp_within_a_query_budget(
    stripe_ready, org, owner, client_for, django_assert_max_num_queries
):
    from datetime import timedelta

    from django.utils import timezone

    from apps.billing import services

    services.comp_grant(
        org=org, plan_code="business", reason="partner", expires_at=timezone.now() + timedelta(7)
    )
    client = client_for(owner)

    with django_assert_max_num_queries(5):
        body = client.get("/api/v1/billing").json()

    assert body["plan"] == "business"
    assert body["comp"]["plan"] == "business"
    assert body["comp"]["reason"] == "partner"
