"""Billing fixtures: Stripe keys for tests, the fake Stripe API server (fakestripe.py), and a
helper that posts events signed exactly as Stripe signs them."""

from __future__ import annotations

import pytest
import stripe

from apps.plans.models import Plan
from tests.billing import fakestripe

TEST_KEY = "sk_test_" + "healthorchbillingtests0123"
WEBHOOK_SECRET = "whsec_healthorch_billing_tests"
PRO_PRICE = "price_test_pro_monthly"
BUSINESS_PRICE = "price_test_business_monthly"


@pytest.fixture(scope="session")
def stripe_server():
    with fakestripe.serve() as fake:
        yield fake


@pytest.fixture
def fake_stripe(stripe_server, settings, monkeypatch):
    """Stripe configured and pointed at the fake server, with a clean state."""
    for kind in stripe_server.objects.values():
        kind.clear()
    stripe_server.requests.clear()
    stripe_server.fail_with = None
    settings.STRIPE_TEST_SECRET_KEY = TEST_KEY
    settings.DJSTRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    monkeypatch.setattr(stripe, "api_base", stripe_server.url)
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    return stripe_server


@pytest.fixture
def priced_plans(db):
    """pro and business linked to Stripe prices, as `sync_plans` leaves them."""
    Plan.objects.filter(code="pro").update(stripe_price_id=PRO_PRICE)
    Plan.objects.filter(code="business").update(stripe_price_id=BUSINESS_PRICE)
    yield
    Plan.objects.filter(code__in=["pro", "business"]).update(stripe_price_id="")


@pytest.fixture
def post_event(client):
    """Post a Stripe event to /billing/webhook, signed with the configured secret."""

    def post(event_type, obj, *, event_id=None, created=None, secret=WEBHOOK_SECRET, path=None):
        payload = fakestripe.event_payload(event_type, obj, event_id=event_id, created=created)
        return client.post(
            path or "/billing/webhook",
            data=payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=fakestripe.sign(payload, secret),
        )

    return post
