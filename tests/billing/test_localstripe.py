"""Against localstripe, a real stateful fake Stripe server (PyPI), run on 127.0.0.1: the Stripe
customer created for an organization, a subscription created and cancelled through the API, and
localstripe's own signed webhook delivery into dj-stripe's endpoint on a live server.

localstripe has no /v1/account, so the dj-stripe Account (which dj-stripe needs before it
stores events) is made by hand. It renders subscriptions in the 2017 shape
(items carry `plan`), which the product reads as well as the current shape.
See docs/decisions/0005-testing-billing-without-stripe.md.
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
import requests
import stripe
from djstripe.models import Account, APIKey, Customer, WebhookEndpoint

from apps.billing import gateway
from apps.plans.models import Plan, PlanChange
from apps.tenants.models import Organization, Role
from tests.billing.conftest import PRO_PRICE, TEST_KEY
from tests.factories import MembershipFactory, OrganizationFactory
from tests.support import free_port, wait_for

LOCALSTRIPE = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "localstripe"


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory):
    exe = str(LOCALSTRIPE) if LOCALSTRIPE.exists() else shutil.which("localstripe")
    if exe is None:
        pytest.fail("localstripe is not installed (pip install -r requirements/dev.txt)")
    port = free_port()
    log = (tmp_path_factory.mktemp("localstripe") / "localstripe.log").open("w")
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--from-scratch"], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            urllib.request.urlopen(f"{url}/v1/customers", timeout=1)  # noqa: S310 (loopback)
        except urllib.error.HTTPError:
            return True  # 401 without a key: it answers
        except OSError:
            return False
        return True

    try:
        wait_for(up, timeout=20, what="localstripe to listen")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture
def localstripe(localstripe_url, settings, monkeypatch):
    requests.delete(f"{localstripe_url}/_config/data", timeout=5)
    settings.STRIPE_TEST_SECRET_KEY = TEST_KEY
    monkeypatch.setattr(stripe, "api_base", localstripe_url)
    monkeypatch.setattr(stripe, "max_network_retries", 0)
    account = Account.objects.create(id="acct_localstripe", livemode=False)
    APIKey.objects.create(
        secret=TEST_KEY, type="secret", livemode=False, djstripe_owner_account=account
    )
    return localstripe_url


def _paying_customer(org) -> str:
    """The organization's customer, created by the product, with a card on file."""
    customer = gateway.customer_for(org)
    method = stripe.PaymentMethod.create(
        api_key=TEST_KEY,
        type="card",
        card={"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"},
    )
    stripe.PaymentMethod.attach(method.id, customer=customer.id, api_key=TEST_KEY)
    stripe.Customer.modify(
        customer.id, invoice_settings={"default_payment_method": method.id}, api_key=TEST_KEY
    )
    return customer.id


def _pro_plan_in_stripe() -> None:
    product = stripe.Product.create(api_key=TEST_KEY, name="healthorch Pro", type="service")
    stripe.Plan.create(
        api_key=TEST_KEY,
        id=PRO_PRICE,
        product=product.id,
        amount=2900,
        currency="usd",
        interval="month",
    )
    Plan.objects.filter(code="pro").update(stripe_price_id=PRO_PRICE)


@pytest.mark.django_db
def test_the_customer_is_created_in_stripe_once_and_linked_to_the_organization(localstripe):
    org = OrganizationFactory(billing_email="billing@acme.test")

    first = gateway.customer_for(org)
    second = gateway.customer_for(org)

    assert first.pk == second.pk
    remote = stripe.Customer.retrieve(first.id, api_key=TEST_KEY)
    assert remote.email == "billing@acme.test"
    assert remote.metadata["organization_id"] == str(org.pk)
    assert Customer.objects.get(subscriber=org).id == first.id
    assert len(stripe.Customer.list(api_key=TEST_KEY).data) == 1


@pytest.mark.django_db(transaction=True)
def test_subscribing_and_cancelling_in_stripe_moves_the_plan_through_real_webhooks(
    localstripe, live_server
):
    org = OrganizationFactory(slug="ls-acme")
    MembershipFactory(organization=org, role=Role.OWNER)
    endpoint = WebhookEndpoint.objects.create(
        id="we_localstripe",
        livemode=False,
        secret="whsec_localstripe_delivery",
        url=f"{live_server.url}/stripe/webhook/",
        enabled_events=["*"],
        status="enabled",
        api_version="2017-08-15",
    )
    delivered = requests.post(
        f"{localstripe}/_config/webhooks/healthorch",
        json={
            "url": f"{live_server.url}/stripe/webhook/{endpoint.djstripe_uuid}/",
            "secret": endpoint.secret,
            "events": ["customer.subscription.created", "customer.subscription.deleted"],
        },
        timeout=5,
    )
    assert delivered.status_code == 200
    _pro_plan_in_stripe()
    customer_id = _paying_customer(org)

    sub = stripe.Subscription.create(
        api_key=TEST_KEY, customer=customer_id, items=[{"plan": PRO_PRICE}]
    )

    def plan_is(code: str) -> bool:
        return Organization.objects.get(pk=org.pk).plan_id == code

    wait_for(lambda: plan_is("pro"), timeout=20, what="the subscription webhook to upgrade")
    change = PlanChange.objects.get(organization=org)
    assert (change.from_plan, change.to_plan) == ("free", "pro")
    assert change.source.startswith("evt_")

    stripe.Subscription.cancel(sub.id, api_key=TEST_KEY)

    wait_for(lambda: plan_is("free"), timeout=20, what="the deletion webhook to downgrade")
    assert PlanChange.objects.filter(organization=org).count() == 2
