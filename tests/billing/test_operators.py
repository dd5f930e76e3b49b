"""Operators: `manage.py sync_plans`, comps with reason and expiry, resync from Stripe, and the
admin pages. Stripe is the fake API server (fakestripe.py): localstripe has no Prices."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from apps.billing import gateway, services
from apps.billing.models import BillingAccount, PlanComp
from apps.plans.models import Plan, PlanChange
from apps.tenants.models import Organization
from tests.billing.conftest import BUSINESS_PRICE, PRO_PRICE

pytestmark = pytest.mark.django_db


def plan_of(org) -> str:
    return Organization.objects.get(pk=org.pk).plan_id


# --- sync_plans ---------------------------------------------------------------------------


def test_sync_plans_creates_a_product_and_price_per_paid_plan_and_stores_the_ids(fake_stripe):
    out = StringIO()
    call_command("sync_plans", stdout=out)

    paid = Plan.objects.filter(monthly_price_cents__gt=0)
    assert len(fake_stripe.objects["products"]) == paid.count() == 3
    for plan in paid:
        price = fake_stripe.objects["prices"][plan.stripe_price_id]
        assert price["unit_amount"] == plan.monthly_price_cents
        assert price["recurring"] == {"interval": "month"}
        assert price["product"] == f"healthorch-{plan.code}"
    assert Plan.objects.get(code="free").stripe_price_id == ""
    assert "created" in out.getvalue()


def test_sync_plans_run_twice_changes_nothing(fake_stripe):
    call_command("sync_plans", stdout=StringIO())
    ids = dict(Plan.objects.values_list("code", "stripe_price_id"))
    creates = len(fake_stripe.calls("POST", "/v1/prices"))

    out = StringIO()
    call_command("sync_plans", stdout=out)

    assert dict(Plan.objects.values_list("code", "stripe_price_id")) == ids
    assert len(fake_stripe.calls("POST", "/v1/prices")) == creates
    assert len(fake_stripe.objects["products"]) == 3
    assert out.getvalue().count("unchanged") == 3


def test_sync_plans_makes_a_new_price_when_the_amount_changes(fake_stripe):
    call_command("sync_plans", stdout=StringIO())
    old = Plan.objects.get(code="pro").stripe_price_id
    Plan.objects.filter(code="pro").update(monthly_price_cents=3900)

    call_command("sync_plans", stdout=StringIO())

    new = Plan.objects.get(code="pro").stripe_price_id
    assert new != old
    assert fake_stripe.objects["prices"][new]["unit_amount"] == 3900


def test_sync_plans_without_keys_fails_loudly(settings):
    settings.STRIPE_TEST_SECRET_KEY = ""
    with pytest.raises(CommandError, match="billing not configured"):
        call_command("sync_plans", stdout=StringIO())


# --- comps --------------------------------------------------------------------------------


def test_a_comp_gives_the_plan_until_it_expires(org, operator):
    expires = timezone.now() + timedelta(days=30)
    services.comp_grant(
        org=org, plan_code="business", reason="design partner", expires_at=expires, actor=operator
    )

    assert plan_of(org) == "business"
    change = PlanChange.objects.get(organization=org)
    assert (change.to_plan, change.source, change.actor) == ("business", "comp", operator)
    assert "comp until" in change.reason
    with time_machine.travel(expires + timedelta(minutes=1), tick=True):
        assert services.billing_sweep() == 1
        assert plan_of(org) == "free"
        assert PlanComp.objects.get().ended_at == expires


def test_when_a_comp_ends_the_organization_returns_to_what_it_pays_for(org, operator):
    BillingAccount.objects.create(
        organization=org, status="active", paid_plan="pro", subscription_id="sub_1"
    )
    comp = services.comp_grant(
        org=org,
        plan_code="enterprise",
        reason="incident apology",
        expires_at=timezone.now() + timedelta(days=3),
        actor=operator,
    )
    assert plan_of(org) == "enterprise"

    services.comp_end(comp=comp, actor=operator)

    assert plan_of(org) == "pro"


def test_a_comp_needs_a_reason_and_a_future_expiry(org):
    with pytest.raises(services.ServiceError):
        services.comp_grant(
            org=org, plan_code="pro", reason=" ", expires_at=timezone.now() + timedelta(days=1)
        )
    with pytest.raises(services.ServiceError):
        services.comp_grant(
            org=org, plan_code="pro", reason="x", expires_at=timezone.now() - timedelta(days=1)
        )
    assert plan_of(org) == "free"


def test_webhooks_do_not_override_an_active_comp(fake_stripe, priced_plans, org, post_event):
    customer = gateway.customer_for(org)
    services.comp_grant(
        org=org, plan_code="business", reason="partner", expires_at=timezone.now() + timedelta(1)
    )
    sub = fake_stripe.put_subscription(customer=customer.id, price=PRO_PRICE)

    post_event("customer.subscription.created", sub)

    assert plan_of(org) == "business"
    assert BillingAccount.objects.get(organization=org).paid_plan == "pro"


# --- resync -------------------------------------------------------------------------------


def test_resync_adopts_the_subscription_stripe_has_now(fake_stripe, priced_plans, org):
    customer = gateway.customer_for(org)
    fake_stripe.put_subscription(customer=customer.id, price=PRO_PRICE, status="canceled")
    current = fake_stripe.put_subscription(customer=customer.id, price=BUSINESS_PRICE)

    services.organization_resync(org=org)

    assert plan_of(org) == "business"
    assert BillingAccount.objects.get(organization=org).subscription_id == current["id"]


# --- admin --------------------------------------------------------------------------------


def _login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_operator_sees_each_organizations_subscription(operator, org, other_org):
    BillingAccount.objects.create(organization=org, status="active", paid_plan="pro")
    BillingAccount.objects.create(organization=other_org, status="past_due", paid_plan="business")

    page = _login(operator).get("/admin/billing/billingaccount/").content.decode()

    assert "Acme" in page
    assert "Globex" in page
    assert "past_due" in page or "Past due" in page


def test_the_operator_resyncs_one_organization_from_the_admin(
    fake_stripe, priced_plans, operator, org
):
    customer = gateway.customer_for(org)
    account = BillingAccount.objects.create(organization=org, stripe_customer_id=customer.id)
    fake_stripe.put_subscription(customer=customer.id, price=PRO_PRICE)

    response = _login(operator).post(
        "/admin/billing/billingaccount/",
        {"action": "resync_from_stripe", "_selected_action": [str(account.pk)], "confirm": "yes"},
        follow=True,
    )

    assert response.status_code == 200
    assert "resynced, free -&gt; pro" in response.content.decode()
    assert plan_of(org) == "pro"


def test_the_operator_comps_a_plan_in_the_admin(operator, org):
    expires = (timezone.now() + timedelta(days=14)).replace(microsecond=0)
    response = _login(operator).post(
        "/admin/billing/plancomp/add/",
        {
            "organization": str(org.pk),
            "plan": "business",
            "reason": "launch partner",
            "expires_at_0": expires.strftime("%Y-%m-%d"),
            "expires_at_1": expires.strftime("%H:%M:%S"),
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    comp = PlanComp.objects.get(organization=org)
    assert (comp.plan_id, comp.reason, comp.created_by) == ("business", "launch partner", operator)
    assert plan_of(org) == "business"
    history = _login(operator).get("/admin/plans/planchange/").content.decode()
    assert "comp" in history


def test_a_tenant_sees_its_own_subscription_only_and_cannot_resync(owner, org, other_org):
    owner.is_staff = True
    owner.save(update_fields=["is_staff"])
    mine = BillingAccount.objects.create(organization=org, status="active")
    theirs = BillingAccount.objects.create(organization=other_org, status="active")
    client = _login(owner)

    page = client.get("/admin/billing/billingaccount/").content.decode()

    assert "Acme" in page
    assert "Globex" not in page
    assert "resync_from_stripe" not in page
    assert client.get(f"/admin/billing/billingaccount/{mine.pk}/change/").status_code == 200
    assert client.get(f"/admin/billing/billingaccount/{theirs.pk}/change/").status_code == 404
    assert client.get("/admin/billing/plancomp/").status_code == 403
