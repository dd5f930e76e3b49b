"""Two deliveries about one subscription racing, on PostgreSQL with real threads and
connections. The Stripe API is the fake server (fakestripe.py), told to hold its answer to the
first read for a moment, as a slow network would."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, connections

from apps.billing import gateway, services
from apps.billing.models import BillingAccount
from apps.plans.models import Plan
from apps.tenants.models import Organization
from tests.billing.conftest import BUSINESS_PRICE, PRO_PRICE
from tests.factories import OrganizationFactory


@pytest.mark.django_db(transaction=True)
def test_a_slow_read_of_an_old_state_never_commits_over_a_newer_one(fake_stripe):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL (SQLite serialises whole transactions)")
    Plan.objects.filter(code="pro").update(stripe_price_id=PRO_PRICE)
    Plan.objects.filter(code="business").update(stripe_price_id=BUSINESS_PRICE)
    org = OrganizationFactory()
    customer = gateway.customer_for(org).id
    BillingAccount.objects.create(organization=org, stripe_customer_id=customer)
    sub = fake_stripe.put_subscription(customer=customer, price=PRO_PRICE)
    errors: list[BaseException] = []

    def deliver(source: str) -> None:
        try:
            services.subscription_refresh(org=org, subscription_id=sub["id"], source=source)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    # The first delivery reads "pro" and its answer is held for 1.5 s...
    fake_stripe.delay_next_subscription_read = 1.5
    slow = threading.Thread(target=deliver, args=("evt_old",))
    slow.start()
    time.sleep(0.5)
    # ...meanwhile the customer moves to business and that event is delivered too.
    fake_stripe.put_subscription(customer=customer, price=BUSINESS_PRICE, sub_id=sub["id"])
    fast = threading.Thread(target=deliver, args=("evt_new",))
    fast.start()
    slow.join(timeout=15)
    fast.join(timeout=15)

    assert not errors
    assert Organization.objects.get(pk=org.pk).plan_id == "business"
    assert BillingAccount.objects.get(organization=org).paid_plan == "business"
