#!/usr/bin/env python
"""From `checkout.session.completed` arriving to the organization's paid features unlocking.

Each round is one new organization on the free plan with a Stripe customer (prepared
untimed). The timed part is exactly what happens when Stripe delivers the event: one signed
POST /billing/webhook through Django's full request stack (signature check, dj-stripe storing
the Event, the subscription re-fetched from the Stripe API under a row lock, the plan change
with its downgrade rules and PlanChange row, commit), then a fresh read of the organization and
its entitlements showing `auto_orchestration` unlocked.

The Stripe API is the test suite's fake server (tests/billing/fakestripe.py) on 127.0.0.1, in a
thread of this process, so its work shares our GIL: the figure includes it. Real Stripe adds its
own round trip for the one re-fetch (not measurable here: no network).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/healthorch_billbench \\
    CACHE_URL=redis://127.0.0.1:6379/9 DEBUG=1 .venv/bin/python benchmarks/billing_webhook.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("STRIPE_TEST_SECRET_KEY", "sk_test_" + "healthorchbillingbench0123")
os.environ.setdefault("DJSTRIPE_WEBHOOK_SECRET", "whsec_healthorch_billing_bench")

import django

django.setup()

import stripe  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

PRICE = "price_bench_pro_monthly"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()

    setup_test_environment()
    connection.creation.create_test_db(keepdb=True, verbosity=0)
    from apps.billing import gateway
    from apps.billing.models import BillingAccount
    from apps.plans.models import Plan
    from apps.plans.selectors import entitlements_for
    from apps.plans.services import plans_ensure_defaults
    from apps.tenants.models import Organization
    from tests.billing import fakestripe

    plans_ensure_defaults()
    Plan.objects.filter(code="pro").update(stripe_price_id=PRICE)
    Organization.objects.filter(slug__startswith="bench-bill-").delete()
    secret = settings.DJSTRIPE_WEBHOOK_SECRET
    client = Client()

    with fakestripe.serve() as fake:
        stripe.api_base = fake.url
        stripe.max_network_retries = 0

        def prepare(i: int):
            org = Organization.objects.create(name=f"Bench {i}", slug=f"bench-bill-{i}")
            customer = gateway.customer_for(org)
            BillingAccount.objects.create(organization=org, stripe_customer_id=customer.id)
            sub = fake.put_subscription(customer=customer.id, price=PRICE)
            payload = fakestripe.event_payload(
                "checkout.session.completed",
                {
                    "id": fakestripe.new_id("cs"),
                    "object": "checkout.session",
                    "mode": "subscription",
                    "customer": customer.id,
                    "client_reference_id": str(org.pk),
                    "subscription": sub["id"],
                },
            )
            return org, payload, fakestripe.sign(payload, secret)

        def deliver(org, payload, signature) -> float:
            start = time.perf_counter()
            response = client.post(
                "/billing/webhook",
                data=payload,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=signature,
            )
            fresh = Organization.objects.select_related("plan").get(pk=org.pk)
            unlocked = entitlements_for(fresh).has("auto_orchestration")
            elapsed = (time.perf_counter() - start) * 1000
            if response.status_code != 200 or not unlocked:
                raise SystemExit(f"round failed: {response.status_code} {response.content[:300]}")
            return elapsed

        for i in range(5):  # warm: dj-stripe's Account/APIKey rows, connections, caches
            deliver(*prepare(-1 - i))
        queries: list[str] = []
        calls_before = len(fake.requests)
        org, payload, signature = prepare(10**6)

        def count(execute, sql, params, many, context):
            queries.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            deliver(org, payload, signature)
        stripe_calls = len(fake.requests) - calls_before - 1  # minus the customer create
        if os.environ.get("BENCH_SHOW_QUERIES"):
            print("\n".join(q[:160] for q in queries))

        samples = []
        for i in range(args.rounds):
            samples.append(deliver(*prepare(i)))

    samples.sort()
    median = statistics.median(samples)
    p95 = samples[int(len(samples) * 0.95)]
    print(
        f"database: {connection.vendor} {connection.settings_dict['NAME']}, "
        f"rounds: {args.rounds}, per round: {len(queries)} queries, {stripe_calls} Stripe call(s)"
    )
    print("checkout.session.completed -> features unlocked (one request)")
    print(
        f"  median {median:.1f} ms   p95 {p95:.1f} ms   min {samples[0]:.1f} ms   max {samples[-1]:.1f} ms"
    )
    print(f"  target < 200 ms median: {'met' if median < 200 else 'MISSED'}")
    Organization.objects.filter(slug__startswith="bench-bill-").delete()


if __name__ == "__main__":
    main()
