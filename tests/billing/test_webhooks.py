"""Webhooks moving plans. The events are ones localstripe never emits (checkout.session.completed,
customer.subscription.updated, invoice.paid, invoice.payment_failed) or in states it cannot
reach (past_due, cancel at period end), so each test builds the event itself, signs it with
`stripe.WebhookSignature.generate_signature_header` exactly as Stripe does, and posts it; the
product re-fetches the subscription from the fake Stripe API server (fakestripe.py, current API
shape) through the real stripe library. Real signed delivery from localstripe is in
test_localstripe.py."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import stripe
import time_machine
from django.core import mail
from django.utils import timezone
from djstripe.models import Event, WebhookEndpoint, WebhookEventTrigger

from apps.billing import gateway, services
from apps.billing.models import BillingAccount
from apps.monitors import services as monitor_services
from apps.monitors.models import Monitor
from apps.plans.models import PlanChange
from apps.plans.selectors import entitlements_for
from apps.tenants.models import Organization
from tests.billing import fakestripe
from tests.billing.conftest import BUSINESS_PRICE, PRO_PRICE, WEBHOOK_SECRET
from tests.monitors.targets import closed_port


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def customer(fake_stripe, priced_plans, org, owner):
    """The organization has a Stripe customer (as after POST /billing/upgrade)."""
    cus = gateway.customer_for(org)
    BillingAccount.objects.create(organization=org, stripe_customer_id=cus.id)
    return cus.id


def session_completed(org, customer, sub_id, **extra):
    return {
        "id": fakestripe.new_id("cs"),
        "object": "checkout.session",
        "mode": "subscription",
        "status": "complete",
        "customer": customer,
        "client_reference_id": str(org.pk),
        "subscription": sub_id,
        **extra,
    }


def invoice(customer, sub_id):
    # API versions from 2025 on name the subscription under `parent`.
    return {
        "id": fakestripe.new_id("in"),
        "object": "invoice",
        "customer": customer,
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": sub_id},
        },
    }


def plan_of(org) -> str:
    return Organization.objects.get(pk=org.pk).plan_id


def subscribe(fake_stripe, org, customer, post_event, price=PRO_PRICE, **sub):
    created = fake_stripe.put_subscription(customer=customer, price=price, **sub)
    response = post_event(
        "checkout.session.completed", session_completed(org, customer, created["id"])
    )
    assert response.status_code == 200, response.content
    return created


# --- upgrade ------------------------------------------------------------------------------


def test_checkout_completed_puts_the_organization_on_the_paid_plan_at_once(
    fake_stripe, org, customer, post_event
):
    sub = fake_stripe.put_subscription(customer=customer, price=PRO_PRICE)
    assert not entitlements_for(org).has("auto_orchestration")

    response = post_event(
        "checkout.session.completed", session_completed(org, customer, sub["id"]), event_id="evt_a"
    )

    assert response.status_code == 200
    org.refresh_from_db()
    assert org.plan_id == "pro"
    assert entitlements_for(org).has("auto_orchestration")
    change = PlanChange.objects.get(organization=org)
    assert (change.from_plan, change.to_plan, change.source) == ("free", "pro", "evt_a")
    account = BillingAccount.objects.get(organization=org)
    assert (account.status, account.subscription_id, account.paid_plan) == (
        "active",
        sub["id"],
        "pro",
    )


def test_billing_shows_the_subscription_after_checkout(
    fake_stripe, org, owner, customer, post_event, client_for
):
    sub = subscribe(fake_stripe, org, customer, post_event)

    body = client_for(owner).get("/api/v1/billing").json()

    assert body["plan"] == "pro"
    assert body["subscription_status"] == "active"
    assert body["subscription_plan"] == "pro"
    assert body["cancel_at_period_end"] is False
    period_end = sub["items"]["data"][0]["current_period_end"]
    assert body["current_period_end"].startswith(
        datetime.fromtimestamp(period_end, tz=UTC).strftime("%Y-%m-%dT%H:%M")
    )


def test_a_trialing_subscription_gets_the_plan(fake_stripe, org, customer, post_event):
    subscribe(fake_stripe, org, customer, post_event, price=BUSINESS_PRICE, status="trialing")
    assert plan_of(org) == "business"


def test_an_incomplete_checkout_subscription_leaves_the_organization_free(
    fake_stripe, org, customer, post_event
):
    subscribe(fake_stripe, org, customer, post_event, status="incomplete")
    assert plan_of(org) == "free"
    assert not PlanChange.objects.filter(organization=org).exists()


def test_a_subscription_created_event_alone_also_upgrades(fake_stripe, org, customer, post_event):
    sub = fake_stripe.put_subscription(customer=customer, price=PRO_PRICE)
    assert post_event("customer.subscription.created", sub).status_code == 200
    assert plan_of(org) == "pro"


# --- replay and order ---------------------------------------------------------------------


def test_a_replayed_event_changes_nothing(fake_stripe, org, customer, post_event):
    sub = fake_stripe.put_subscription(customer=customer, price=PRO_PRICE)
    obj = session_completed(org, customer, sub["id"])
    first = post_event("checkout.session.completed", obj, event_id="evt_same")
    fetches = len(fake_stripe.calls("GET", "/v1/subscriptions"))

    second = post_event("checkout.session.completed", obj, event_id="evt_same")

    assert first.status_code == second.status_code == 200
    assert PlanChange.objects.filter(organization=org).count() == 1
    assert Event.objects.filter(id="evt_same").count() == 1
    assert len(fake_stripe.calls("GET", "/v1/subscriptions")) == fetches  # not even re-fetched


def test_the_same_state_told_twice_by_different_events_records_one_change(
    fake_stripe, org, customer, post_event
):
    sub = subscribe(fake_stripe, org, customer, post_event)
    assert post_event("customer.subscription.updated", sub).status_code == 200
    assert post_event("invoice.paid", invoice(customer, sub["id"])).status_code == 200
    assert PlanChange.objects.filter(organization=org).count() == 1


def test_an_older_event_arriving_after_a_newer_one_never_rolls_the_plan_back(
    fake_stripe, org, customer, post_event
):
    sub = subscribe(fake_stripe, org, customer, post_event)
    older = dict(sub)  # what the subscription looked like on pro
    # Newer: the customer moved to business in the portal; that event arrives first.
    newer = fake_stripe.put_subscription(customer=customer, price=BUSINESS_PRICE, sub_id=sub["id"])
    now = int(time.time())
    post_event("customer.subscription.updated", newer, created=now)
    assert plan_of(org) == "business"

    # The older event (pro, a minute earlier) arrives late.
    response = post_event("customer.subscription.updated", older, created=now - 60)

    assert response.status_code == 200
    assert plan_of(org) == "business"
    assert list(
        PlanChange.objects.filter(organization=org)
        .order_by("created_at")
        .values_list("to_plan", flat=True)
    ) == ["pro", "business"]


def test_a_late_created_event_after_deletion_does_not_resurrect_the_plan(
    fake_stripe, org, customer, post_event
):
    sub = subscribe(fake_stripe, org, customer, post_event)
    created_payload = dict(sub)
    canceled = fake_stripe.put_subscription(
        customer=customer, price=PRO_PRICE, sub_id=sub["id"], status="canceled"
    )
    post_event("customer.subscription.deleted", canceled)
    assert plan_of(org) == "free"

    post_event("customer.subscription.created", created_payload, created=int(time.time()) - 3600)

    assert plan_of(org) == "free"


def test_a_late_event_about_a_replaced_subscription_is_ignored(
    fake_stripe, org, customer, post_event
):
    old = subscribe(fake_stripe, org, customer, post_event)
    fake_stripe.put_subscription(
        customer=customer, price=PRO_PRICE, sub_id=old["id"], status="canceled"
    )
    new = subscribe(fake_stripe, org, customer, post_event, price=BUSINESS_PRICE)
    assert plan_of(org) == "business"

    post_event("customer.subscription.deleted", fake_stripe.objects["subscriptions"][old["id"]])

    assert plan_of(org) == "business"
    assert BillingAccount.objects.get(organization=org).subscription_id == new["id"]


# --- cancellation and deletion ------------------------------------------------------------


def test_cancel_at_period_end_stays_paid_until_the_period_ends_then_free(
    fake_stripe, org, owner, customer, post_event, client_for
):
    sub = subscribe(fake_stripe, org, customer, post_event)
    period_end = int(time.time()) + 10 * 86400
    cancelling = fake_stripe.put_subscription(
        customer=customer,
        price=PRO_PRICE,
        sub_id=sub["id"],
        period_end=period_end,
        cancel_at_period_end=True,
    )

    post_event("customer.subscription.updated", cancelling)

    assert plan_of(org) == "pro"
    assert client_for(owner).get("/api/v1/billing").json()["cancel_at_period_end"] is True
    with time_machine.travel(timezone.now() + timedelta(days=9), tick=True):
        assert services.billing_sweep() == 0
        assert plan_of(org) == "pro"
    with time_machine.travel(timezone.now() + timedelta(days=10, hours=1), tick=True):
        # Even if Stripe's customer.subscription.deleted is late, the sweep ends the period.
        assert services.billing_sweep() == 1
        assert plan_of(org) == "free"
        change = PlanChange.objects.filter(organization=org).first()
        assert (change.to_plan, change.source) == ("free", "period ended")


def test_deletion_moves_to_free_through_the_downgrade_rules(fake_stripe, org, customer, post_event):
    sub = subscribe(fake_stripe, org, customer, post_event)
    monitor = monitor_services.monitor_create(
        org=Organization.objects.get(pk=org.pk),
        data={
            "name": "api",
            "kind": "http",
            "config": {"url": "http://127.0.0.1:9/"},
            "interval_seconds": 60,
        },
    )
    canceled = fake_stripe.put_subscription(
        customer=customer, price=PRO_PRICE, sub_id=sub["id"], status="canceled"
    )

    response = post_event("customer.subscription.deleted", canceled, event_id="evt_gone")

    assert response.status_code == 200
    assert plan_of(org) == "free"
    change = PlanChange.objects.filter(organization=org).first()
    assert (change.from_plan, change.to_plan, change.source) == ("pro", "free", "evt_gone")
    assert change.effects["monitors"]["raised_intervals"]["monitors"] == [str(monitor.pk)]
    monitor = Monitor.objects.get(pk=monitor.pk)  # kept, not deleted
    assert monitor.interval_seconds == 300


# --- past due -------------------------------------------------------------------------------


def test_past_due_keeps_the_plan_for_the_grace_period_warns_owners_then_goes_free(
    fake_stripe,
    settings,
    org,
    owner,
    admin_user,
    customer,
    post_event,
    django_capture_on_commit_callbacks,
):
    settings.BILLING_GRACE_DAYS = 7
    sub = subscribe(fake_stripe, org, customer, post_event)
    fake_stripe.put_subscription(
        customer=customer, price=PRO_PRICE, sub_id=sub["id"], status="past_due"
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = post_event("invoice.payment_failed", invoice(customer, sub["id"]))

    assert response.status_code == 200
    assert plan_of(org) == "pro"
    account = BillingAccount.objects.get(organization=org)
    assert account.grace_until - timezone.now() > timedelta(days=6, hours=23)
    [warning] = mail.outbox
    assert warning.to == [owner.email]  # owners, not admins
    assert "Payment failed" in warning.subject
    assert "billing portal" in warning.body

    # Stripe retries the charge and fails again: no second warning, same grace period.
    with django_capture_on_commit_callbacks(execute=True):
        post_event("invoice.payment_failed", invoice(customer, sub["id"]))
    assert len(mail.outbox) == 1
    assert BillingAccount.objects.get(organization=org).grace_until == account.grace_until

    with time_machine.travel(timezone.now() + timedelta(days=6), tick=True):
        services.billing_sweep()
        assert plan_of(org) == "pro"
    with time_machine.travel(timezone.now() + timedelta(days=7, minutes=5), tick=True):
        assert services.billing_sweep() == 1
        assert plan_of(org) == "free"
        change = PlanChange.objects.filter(organization=org).first()
        assert change.source == "grace ended"
        assert "grace period ended" in change.reason
        # A webhook after expiry (the same past_due state) keeps it free.
        post_event("customer.subscription.updated", fake_stripe.objects["subscriptions"][sub["id"]])
        assert plan_of(org) == "free"


def test_paying_within_the_grace_period_ends_it(fake_stripe, org, customer, post_event):
    sub = subscribe(fake_stripe, org, customer, post_event)
    fake_stripe.put_subscription(
        customer=customer, price=PRO_PRICE, sub_id=sub["id"], status="past_due"
    )
    post_event("invoice.payment_failed", invoice(customer, sub["id"]))
    fake_stripe.put_subscription(customer=customer, price=PRO_PRICE, sub_id=sub["id"])

    post_event("invoice.paid", invoice(customer, sub["id"]))

    account = BillingAccount.objects.get(organization=org)
    assert (account.status, account.grace_until) == ("active", None)
    with time_machine.travel(timezone.now() + timedelta(days=8), tick=True):
        services.billing_sweep()
        assert plan_of(org) == "pro"


# --- refusals -------------------------------------------------------------------------------


def test_a_bad_signature_is_a_400_and_nothing_is_stored(fake_stripe, org, customer, post_event):
    sub = fake_stripe.put_subscription(customer=customer, price=PRO_PRICE)
    obj = session_completed(org, customer, sub["id"])

    response = post_event("checkout.session.completed", obj, secret="whsec_forged")

    assert response.status_code == 400
    assert not Event.objects.exists()
    assert not WebhookEventTrigger.objects.exists()
    assert plan_of(org) == "free"
    assert fake_stripe.calls("GET", "/v1/subscriptions") == []


def test_a_missing_signature_is_a_400(fake_stripe, db, client):
    payload = fakestripe.event_payload("invoice.paid", {"id": "in_1", "object": "invoice"})
    response = client.post("/billing/webhook", data=payload, content_type="application/json")
    assert response.status_code == 400
    assert not Event.objects.exists()


def test_an_event_type_we_do_not_use_is_a_200_and_logged(fake_stripe, db, post_event, caplog):
    caplog.set_level("INFO", logger="apps.billing.webhooks")
    response = post_event("balance.available", {"object": "balance", "available": []})

    assert response.status_code == 200
    assert any(r.getMessage() == "stripe event not used" for r in caplog.records)


def test_an_event_for_an_unknown_customer_is_a_200_and_changes_nothing(fake_stripe, db, post_event):
    sub = fake_stripe.put_subscription(customer="cus_nobody", price=PRO_PRICE)
    assert post_event("customer.subscription.updated", sub).status_code == 200
    assert not PlanChange.objects.exists()


def test_stripe_down_while_processing_is_a_503_then_the_redelivery_applies(
    fake_stripe, org, customer, post_event, monkeypatch
):
    import stripe

    sub = fake_stripe.put_subscription(customer=customer, price=PRO_PRICE)
    obj = session_completed(org, customer, sub["id"])
    with closed_port() as port:
        monkeypatch.setattr(stripe, "api_base", f"http://127.0.0.1:{port}")
        down = post_event("checkout.session.completed", obj, event_id="evt_retry")
    assert down.status_code == 503
    assert not Event.objects.filter(id="evt_retry").exists()  # so Stripe's retry is processed
    assert plan_of(org) == "free"

    monkeypatch.setattr(stripe, "api_base", fake_stripe.url)
    again = post_event("checkout.session.completed", obj, event_id="evt_retry")

    assert again.status_code == 200
    assert plan_of(org) == "pro"


# --- dj-stripe's own endpoint -------------------------------------------------------------


@pytest.fixture
def endpoint(fake_stripe):
    return WebhookEndpoint.objects.create(
        id="we_test_billing",
        livemode=False,
        secret="whsec_endpoint_secret",
        url="http://testserver/stripe/webhook/",
        enabled_events=["*"],
        status="enabled",
        api_version=fakestripe.API_VERSION,
    )


def test_dj_stripes_endpoint_reaches_the_same_handling(
    fake_stripe, org, customer, post_event, endpoint
):
    sub = fake_stripe.put_subscription(customer=customer, price=PRO_PRICE)

    response = post_event(
        "checkout.session.completed",
        session_completed(org, customer, sub["id"]),
        secret=endpoint.secret,
        path=f"/stripe/webhook/{endpoint.djstripe_uuid}/",
    )

    assert response.status_code == 200
    assert plan_of(org) == "pro"
    assert WebhookEventTrigger.objects.get().processed


def test_dj_stripes_endpoint_stores_nothing_for_a_bad_signature(
    fake_stripe, org, customer, post_event, endpoint
):
    sub = fake_stripe.put_subscription(customer=customer, price=PRO_PRICE)

    response = post_event(
        "checkout.session.completed",
        session_completed(org, customer, sub["id"]),
        secret=WEBHOOK_SECRET,  # not this endpoint's secret
        path=f"/stripe/webhook/{endpoint.djstripe_uuid}/",
    )

    assert response.status_code == 400
    assert not WebhookEventTrigger.objects.exists()
    assert not Event.objects.exists()
    assert plan_of(org) == "free"


def test_a_subscription_stripe_no_longer_knows_moves_to_free(
    fake_stripe, org, customer, post_event
):
    sub = subscribe(fake_stripe, org, customer, post_event)
    del fake_stripe.objects["subscriptions"][sub["id"]]

    response = post_event("customer.subscription.deleted", sub)

    assert response.status_code == 200
    assert plan_of(org) == "free"


def test_a_stale_signature_timestamp_is_a_400(fake_stripe, org, customer, client):
    sub = fake_stripe.put_subscription(customer=customer, price=PRO_PRICE)
    payload = fakestripe.event_payload(
        "checkout.session.completed", session_completed(org, customer, sub["id"])
    )
    stale = stripe.WebhookSignature.generate_signature_header(
        payload, WEBHOOK_SECRET, timestamp=int(time.time()) - 3600
    )

    response = client.post(
        "/billing/webhook",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=stale,
    )

    assert response.status_code == 400
    assert not Event.objects.exists()
