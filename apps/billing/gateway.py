"""Every call to Stripe goes through here (STYLE rule 10: only apps.billing imports stripe).

Stripe failures (unreachable, timing out, answering 5xx, refusing a key) become
`BillingUnavailable`, which the API answers with 503; callers make their Stripe calls before
they write anything, so a failure leaves nothing half-stored.
"""

from __future__ import annotations

import logging
from typing import Any

import stripe
from django.conf import settings
from django.db import transaction
from djstripe.models import Customer
from djstripe.settings import djstripe_settings

from apps.core.errors import ServiceError
from apps.tenants.models import Organization

logger = logging.getLogger(__name__)


class BillingUnavailable(ServiceError):
    status_code = 503
    title = "Billing unavailable"


def configure_client() -> None:
    """Bounded timeouts and retries for every Stripe call, dj-stripe's included.

    The library's default waits 80 s per request: one slow Stripe would hold a web worker
    that long while a user waits for a checkout link.
    """
    stripe.default_http_client = stripe.RequestsClient(
        timeout=settings.BILLING_STRIPE_TIMEOUT_SECONDS
    )
    stripe.max_network_retries = settings.BILLING_STRIPE_MAX_RETRIES
    stripe.enable_telemetry = False
    if host := getattr(settings, "STRIPE_API_HOST", ""):
        stripe.api_base = host


def api_key() -> str:
    return djstripe_settings.STRIPE_SECRET_KEY


def is_configured() -> bool:
    return bool(api_key())


def require_configured() -> None:
    if not is_configured():
        raise BillingUnavailable(
            "billing not configured: set STRIPE_TEST_SECRET_KEY (or STRIPE_LIVE_SECRET_KEY).",
            code="billing_not_configured",
        )


def webhook_secret() -> str:
    return settings.DJSTRIPE_WEBHOOK_SECRET


def _call(what: str, fn, *args: Any, missing_ok: bool = False, **kwargs: Any) -> Any:
    """Call Stripe; None for a 404 when `missing_ok`, BillingUnavailable for any failure."""
    try:
        return fn(*args, api_key=api_key(), **kwargs)
    except stripe.InvalidRequestError as exc:
        if missing_ok and getattr(exc, "http_status", None) == 404:
            return None
        logger.warning(
            "stripe refused a request",
            extra={"call": what, "error": type(exc).__name__, "detail": str(exc)[:300]},
        )
        raise BillingUnavailable(
            f"Stripe refused the request ({exc.user_message or exc}); nothing was changed.",
            code="stripe_refused",
        ) from exc
    except stripe.StripeError as exc:
        logger.warning(
            "stripe call failed",
            extra={"call": what, "error": type(exc).__name__, "detail": str(exc)[:300]},
        )
        raise BillingUnavailable(
            "Stripe could not be reached or refused the request; nothing was changed. "
            "Try again in a minute.",
            code="stripe_unavailable",
        ) from exc


def _as_dict(obj: Any) -> dict:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


# --- Customers ------------------------------------------------------------------------------


def customer_for(org: Organization) -> Customer:
    """The organization's dj-stripe Customer, created in Stripe on first need.

    dj-stripe records an idempotency key before calling Stripe; the savepoint drops it (and the
    Customer row) if the call fails, so a failed attempt leaves no row behind.
    """
    existing = Customer.objects.filter(subscriber=org, livemode=settings.STRIPE_LIVE_MODE).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            customer, _ = Customer.get_or_create(
                subscriber=org,
                livemode=settings.STRIPE_LIVE_MODE,
                api_key=api_key(),
                metadata={"organization_id": str(org.pk), "organization": org.slug},
            )
    except stripe.StripeError as exc:
        logger.warning("stripe customer create failed", extra={"org": org.slug, "error": str(exc)})
        raise BillingUnavailable(
            "Stripe could not be reached or refused the request; nothing was changed. "
            "Try again in a minute.",
            code="stripe_unavailable",
        ) from exc
    logger.info("stripe customer created", extra={"org": org.slug, "customer": customer.id})
    return customer


# --- Checkout and portal ------------------------------------------------------------------


def checkout_session_create(
    *,
    customer_id: str,
    org: Organization,
    plan_code: str,
    price_id: str,
    success_url: str,
    cancel_url: str,
) -> dict:
    metadata = {"organization_id": str(org.pk), "plan": plan_code}
    session = _call(
        "checkout.session.create",
        stripe.checkout.Session.create,
        mode="subscription",
        customer=customer_id,
        client_reference_id=str(org.pk),
        line_items=[{"price": price_id, "quantity": 1}],
        success_url=success_url,
        cancel_url=cancel_url,
        metadata=metadata,
        subscription_data={"metadata": metadata},
    )
    return _as_dict(session)


def portal_session_create(*, customer_id: str, return_url: str) -> dict:
    session = _call(
        "billing_portal.session.create",
        stripe.billing_portal.Session.create,
        customer=customer_id,
        return_url=return_url,
    )
    return _as_dict(session)


# --- Subscriptions --------------------------------------------------------------------------


def subscription_retrieve(subscription_id: str) -> dict | None:
    """The subscription as Stripe has it now; None if Stripe no longer knows it."""
    sub = _call(
        "subscription.retrieve", stripe.Subscription.retrieve, subscription_id, missing_ok=True
    )
    return None if sub is None else _as_dict(sub)


def customer_subscriptions(customer_id: str) -> list[dict]:
    """The customer's subscriptions in every status, newest first (for a resync)."""
    listing = _call(
        "subscription.list", stripe.Subscription.list, customer=customer_id, status="all", limit=10
    )
    return [_as_dict(sub) for sub in listing.data]


# --- Products and prices (sync_plans) -------------------------------------------------------


def product_upsert(*, product_id: str, name: str, metadata: dict[str, str]) -> dict:
    current = _call("product.retrieve", stripe.Product.retrieve, product_id, missing_ok=True)
    if current is None:
        return _as_dict(
            _call(
                "product.create",
                stripe.Product.create,
                id=product_id,
                name=name,
                metadata=metadata,
            )
        )
    if current.name != name or not getattr(current, "active", True):
        current = _call("product.modify", stripe.Product.modify, product_id, name=name, active=True)
    return _as_dict(current)


def price_find(*, lookup_key: str) -> dict | None:
    listing = _call("price.list", stripe.Price.list, lookup_keys=[lookup_key], active=True, limit=1)
    return _as_dict(listing.data[0]) if listing.data else None


def price_create(
    *, product_id: str, amount_cents: int, currency: str, lookup_key: str, metadata: dict
) -> dict:
    price = _call(
        "price.create",
        stripe.Price.create,
        product=product_id,
        unit_amount=amount_cents,
        currency=currency,
        recurring={"interval": "month"},
        lookup_key=lookup_key,
        # A changed price takes the key over from the old one, so the key always names the
        # current price of the plan.
        transfer_lookup_key=True,
        metadata=metadata,
    )
    return _as_dict(price)
