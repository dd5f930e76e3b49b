"""Writes for billing: checkout, the portal, subscription state from Stripe, comps, the sweep.

The organization's plan is always *derived* (selectors.desired_plan) from the stored
subscription state and any comp, then applied with `apps.plans.services.organization_change_plan`
(which records a PlanChange and runs the downgrade rules). Webhooks never carry the plan
themselves: each one makes us re-fetch the subscription from Stripe under a row lock, so a
replayed event changes nothing and an older event arriving late cannot roll a plan back.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit import services as audit
from apps.billing import gateway
from apps.billing.models import ALIVE_STATUSES, BillingAccount, PlanComp, SubscriptionStatus
from apps.billing.selectors import FREE_PLAN, desired_plan
from apps.core.errors import Conflict, ServiceError
from apps.plans.models import Plan, PlanChange
from apps.plans.services import organization_change_plan
from apps.tenants.models import Membership, Organization, Role

logger = logging.getLogger(__name__)


def _account(org: Organization) -> BillingAccount:
    account, _ = BillingAccount.objects.get_or_create(organization=org)
    return account


# --- Checkout and portal --------------------------------------------------------------------


def checkout_start(
    *,
    org: Organization,
    plan_code: str,
    success_url: str | None = None,
    cancel_url: str | None = None,
) -> dict[str, str]:
    """A Stripe Checkout Session (subscription mode) for `plan_code`'s price.

    Stripe sends the customer back to `success_url` / `cancel_url` (the settings'
    BILLING_SUCCESS_URL / BILLING_CANCEL_URL unless given: the console gives its own pages).

    400 for the free plan or an unknown one; 409 when the plan has no Stripe price yet (the
    operator runs `sync_plans`) or the organization already pays (the portal changes plans);
    503 when Stripe fails, having stored nothing but, at most, the Stripe customer link.
    """
    gateway.require_configured()
    plan = Plan.objects.filter(code=plan_code, is_public=True).first()
    if plan is None:
        raise ServiceError(f"Unknown plan '{plan_code}'.", field="plan", code="unknown_plan")
    if plan.code == FREE_PLAN or plan.monthly_price_cents == 0:
        raise ServiceError(
            "The free plan needs no checkout; cancel the subscription in the billing portal.",
            field="plan",
            code="free_plan",
        )
    if not plan.stripe_price_id:
        raise Conflict(
            f"Plan '{plan.code}' has no Stripe price yet: an operator must run "
            "`python manage.py sync_plans`.",
            code="plan_not_synced",
        )
    account = BillingAccount.objects.for_org(org).first()
    if account is not None and account.status in ALIVE_STATUSES:
        raise Conflict(
            "This organization already has a subscription; change or cancel it in the billing "
            "portal (POST /billing/portal).",
            code="already_subscribed",
        )
    customer = gateway.customer_for(org)
    session = gateway.checkout_session_create(
        customer_id=customer.id,
        org=org,
        plan_code=plan.code,
        price_id=plan.stripe_price_id,
        success_url=success_url or settings.BILLING_SUCCESS_URL,
        cancel_url=cancel_url or settings.BILLING_CANCEL_URL,
    )
    BillingAccount.objects.update_or_create(
        organization=org, defaults={"stripe_customer_id": customer.id}
    )
    logger.info(
        "checkout started",
        extra={"org": org.slug, "plan": plan.code, "session": session.get("id")},
    )
    return {"checkout_url": session["url"], "session_id": session["id"]}


def portal_open(*, org: Organization, return_url: str | None = None) -> dict[str, str]:
    """A Billing Portal session URL where the customer manages payment or cancels; Stripe
    links back to `return_url` (BILLING_PORTAL_RETURN_URL unless given)."""
    gateway.require_configured()
    customer = gateway.customer_for(org)
    session = gateway.portal_session_create(
        customer_id=customer.id, return_url=return_url or settings.BILLING_PORTAL_RETURN_URL
    )
    return {"portal_url": session["url"]}


# --- Subscription state ---------------------------------------------------------------------


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _first_item(data: dict) -> dict:
    items = (data.get("items") or {}).get("data") or []
    return items[0] if items else {}


def parse_subscription(data: dict) -> dict[str, Any]:
    """The fields the plan rules need, from a Stripe subscription of any API version.

    Current API versions carry the price and the period on each item; older ones (and
    localstripe) carry `plan` and a top-level period.
    """
    item = _first_item(data)
    price = item.get("price") or item.get("plan") or data.get("plan") or {}
    period_end = data.get("current_period_end") or item.get("current_period_end")
    cancel_at = data.get("cancel_at")
    customer = data.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    return {
        "id": data["id"],
        "status": data.get("status") or "",
        "price_id": price.get("id", "") if isinstance(price, dict) else str(price),
        "current_period_end": _ts(period_end),
        # The portal cancels "at period end" by setting either flag, depending on version.
        "cancel_at_period_end": bool(data.get("cancel_at_period_end"))
        or (cancel_at is not None and period_end is not None and cancel_at >= period_end),
        "customer": customer or "",
    }


def _plan_for_price(price_id: str) -> str:
    if not price_id:
        return ""
    code = Plan.objects.filter(stripe_price_id=price_id).values_list("code", flat=True).first()
    if code is None:
        logger.error("stripe price matches no plan", extra={"price": price_id})
    return code or ""


def subscription_refresh(
    *, org: Organization, subscription_id: str, source: str, now: datetime | None = None
) -> PlanChange | None:
    """Fetch one subscription from Stripe, store its state and move the plan to match.

    Idempotent: the same Stripe state stored twice changes nothing. Raises BillingUnavailable
    (and stores nothing) when Stripe cannot be reached.
    """
    now = now or timezone.now()
    account = _account(org)
    with transaction.atomic():
        # Lock first, fetch second. The race this prevents: two deliveries (an old event and
        # a new one) fetch the subscription at t1 < t2 and the t1 copy commits last, rolling
        # the state back. Fetching under the lock makes the last writer the last reader.
        account = BillingAccount.objects.select_for_update().get(pk=account.pk)
        data = gateway.subscription_retrieve(subscription_id)
        if data is None:
            logger.warning("subscription not found in stripe", extra={"sub": subscription_id})
            if account.subscription_id != subscription_id:
                return None
            # Stripe forgot the subscription we track (deleted test data): it pays for nothing.
            data = {"id": subscription_id, "status": SubscriptionStatus.CANCELED}
        sub = parse_subscription(data)
        replaced = account.subscription_id and account.subscription_id != sub["id"]
        if replaced and sub["status"] not in ALIVE_STATUSES:
            # A late event about an old subscription: the organization has a newer one.
            logger.info(
                "stripe event about a replaced subscription ignored",
                extra={"org": org.slug, "sub": sub["id"], "tracked": account.subscription_id},
            )
            return None
        warn = _store(account=account, sub=sub, source=source, now=now)
        change = _reconcile_locked(org=org, account=account, source=source, now=now)
    if warn:
        transaction.on_commit(lambda: _send_grace_warning(org=org, account=account))
    return change


def _store(*, account: BillingAccount, sub: dict[str, Any], source: str, now: datetime) -> bool:
    """Copy the subscription's state onto the row; True if a grace warning is now due."""
    account.subscription_id = sub["id"]
    account.status = sub["status"]
    account.price_id = sub["price_id"]
    account.paid_plan = _plan_for_price(sub["price_id"])
    account.current_period_end = sub["current_period_end"]
    account.cancel_at_period_end = sub["cancel_at_period_end"]
    if sub["customer"]:
        account.stripe_customer_id = sub["customer"]
    warn = False
    if sub["status"] == SubscriptionStatus.PAST_DUE:
        if account.past_due_since is None:
            account.past_due_since = now
            account.grace_until = now + timedelta(days=settings.BILLING_GRACE_DAYS)
        if account.grace_warned_at is None:
            account.grace_warned_at = now
            warn = True
    else:
        account.past_due_since = account.grace_until = account.grace_warned_at = None
    account.synced_at = now
    account.synced_by = source[:255]
    account.save()
    return warn


def _reconcile_locked(
    *,
    org: Organization,
    account: BillingAccount | None,
    source: str,
    now: datetime,
    actor: AbstractBaseUser | None = None,
) -> PlanChange | None:
    comp = PlanComp.objects.for_org(org).active(now).first()
    decision = desired_plan(account=account, comp=comp, now=now)
    return organization_change_plan(
        org=org, plan_code=decision.plan, source=source[:64], actor=actor, reason=decision.why
    )


def plan_reconcile(
    *,
    org: Organization,
    source: str,
    actor: AbstractBaseUser | None = None,
    now: datetime | None = None,
) -> PlanChange | None:
    """Move the organization to the plan its stored subscription and comps call for."""
    now = now or timezone.now()
    with transaction.atomic():
        account = BillingAccount.objects.select_for_update().filter(organization=org).first()
        return _reconcile_locked(org=org, account=account, source=source, now=now, actor=actor)


def _send_grace_warning(*, org: Organization, account: BillingAccount) -> None:
    emails = list(
        Membership.objects.for_org(org)
        .filter(role=Role.OWNER)
        .exclude(user__email="")
        .values_list("user__email", flat=True)
    )
    if not emails:
        return
    until = f"{account.grace_until:%Y-%m-%d %H:%M} UTC" if account.grace_until else "soon"
    try:
        send_mail(
            subject=f"[healthorch] Payment failed for {org.name}",
            message=(
                f"The latest payment for {org.name}'s {account.paid_plan} subscription failed.\n\n"
                f"The {account.paid_plan} plan stays active until {until}. Update the payment "
                "method in the billing portal before then; otherwise the organization moves to "
                "the free plan (monitors over its limits are paused, nothing is deleted).\n"
            ),
            from_email=None,
            recipient_list=emails,
        )
    except Exception:  # the state change is committed; a mail failure must not undo it
        logger.exception("grace warning email failed", extra={"org": org.slug})
        return
    logger.info("grace warning sent", extra={"org": org.slug, "to": len(emails)})


# --- Webhook events -------------------------------------------------------------------------

HANDLED_EVENTS = (
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
)


def _org_for(obj: dict) -> Organization | None:
    """The organization a Stripe object belongs to: our metadata first, then the customer."""
    candidates = [
        obj.get("client_reference_id"),
        (obj.get("metadata") or {}).get("organization_id"),
        ((obj.get("subscription_details") or {}).get("metadata") or {}).get("organization_id"),
    ]
    for org_id in filter(None, candidates):
        org = Organization.objects.filter(pk=_uuid_or_none(org_id)).first()
        if org is not None:
            return org
    customer = obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    if obj.get("object") == "customer":
        customer = obj.get("id")
    if not customer:
        return None
    account = (
        BillingAccount.objects.filter(stripe_customer_id=customer)
        .select_related("organization")
        .first()
    )
    if account is not None:
        return account.organization
    from djstripe.models import Customer

    linked = Customer.objects.filter(id=customer).values_list("subscriber_id", flat=True).first()
    return Organization.objects.filter(pk=linked).first() if linked else None


def _uuid_or_none(value: str) -> str | None:
    import uuid

    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def _subscription_id_of(event_type: str, obj: dict) -> str:
    if event_type.startswith("customer.subscription."):
        return obj.get("id", "")
    sub = obj.get("subscription")
    if not sub:  # invoices in API versions from 2025 on
        sub = ((obj.get("parent") or {}).get("subscription_details") or {}).get("subscription")
    if isinstance(sub, dict):
        sub = sub.get("id")
    return sub or ""


def event_handle(*, event_id: str, event_type: str, obj: dict) -> str:
    """Apply one verified Stripe event; returns what happened (for the log).

    Called once per event id (dj-stripe stores the Event and skips ids it has seen), inside
    the webhook's transaction: a failure (Stripe unreachable) rolls everything back and the
    webhook answers non-2xx, so Stripe delivers it again later.
    """
    if event_type not in HANDLED_EVENTS:
        return "ignored"
    if event_type == "checkout.session.completed" and obj.get("mode") != "subscription":
        return "ignored: not a subscription checkout"
    org = _org_for(obj)
    if org is None:
        logger.warning(
            "stripe event for no known organization",
            extra={"event": event_id, "type": event_type, "customer": obj.get("customer")},
        )
        return "ignored: unknown organization"
    subscription_id = _subscription_id_of(event_type, obj)
    if not subscription_id:
        return "ignored: no subscription"
    change = subscription_refresh(org=org, subscription_id=subscription_id, source=event_id)
    outcome = f"{change.from_plan} -> {change.to_plan}" if change else "no plan change"
    logger.info(
        "stripe event applied",
        extra={"event": event_id, "type": event_type, "org": org.slug, "outcome": outcome},
    )
    return outcome


# --- Operators ------------------------------------------------------------------------------


def organization_resync(
    *, org: Organization, actor: AbstractBaseUser | None = None
) -> PlanChange | None:
    """Re-read the organization's subscriptions from Stripe and apply the current one."""
    gateway.require_configured()
    account = BillingAccount.objects.for_org(org).first()
    customer_id = account.stripe_customer_id if account else ""
    if not customer_id:
        from djstripe.models import Customer

        customer_id = (
            Customer.objects.filter(subscriber=org).values_list("id", flat=True).first() or ""
        )
    subs = gateway.customer_subscriptions(customer_id) if customer_id else []
    if not subs:
        return plan_reconcile(org=org, source="resync", actor=actor)
    alive = [s for s in subs if s.get("status") in ALIVE_STATUSES]
    chosen = max(alive or subs, key=lambda s: s.get("created") or 0)
    if account is not None and account.subscription_id != chosen["id"]:
        # An explicit resync adopts Stripe's current subscription even if we tracked another.
        BillingAccount.objects.filter(pk=account.pk).update(subscription_id="")
    return subscription_refresh(org=org, subscription_id=chosen["id"], source="resync")


def comp_grant(
    *,
    org: Organization,
    plan_code: str,
    reason: str,
    expires_at: datetime,
    actor: AbstractBaseUser | None = None,
) -> PlanComp:
    """Give the organization `plan_code` for free until `expires_at` (replaces an open comp)."""
    if not reason.strip():
        raise ServiceError("Say why this organization gets a comp.", field="reason")
    now = timezone.now()
    if expires_at <= now:
        raise ServiceError("The comp must expire in the future.", field="expires_at")
    if not Plan.objects.filter(code=plan_code).exists():
        raise ServiceError(f"Unknown plan '{plan_code}'.", field="plan", code="unknown_plan")
    with transaction.atomic():
        PlanComp.objects.for_org(org).filter(ended_at__isnull=True).update(ended_at=now)
        comp = PlanComp.objects.create(
            organization=org,
            plan_id=plan_code,
            reason=reason.strip(),
            expires_at=expires_at,
            created_by=actor,
        )
        audit.record(
            org=org,
            action="plan.comped",
            target=comp,
            after=audit.snapshot(comp, fields=["plan", "reason", "expires_at"]),
        )
        plan_reconcile(org=org, source="comp", actor=actor, now=now)
    return comp


def comp_end(*, comp: PlanComp, actor: AbstractBaseUser | None = None) -> PlanChange | None:
    """End a comp now; the organization returns to what its subscription pays for."""
    now = timezone.now()
    with transaction.atomic():
        # Compare-and-set: a sweep expiring the same comp at the same moment ends it once.
        if not PlanComp.objects.filter(pk=comp.pk, ended_at__isnull=True).update(ended_at=now):
            return None
        _record_comp_end(comp, ended_at=now)
        return plan_reconcile(org=comp.organization, source="comp ended", actor=actor, now=now)


def _record_comp_end(comp: PlanComp, *, ended_at: datetime, actor: Any = None) -> None:
    audit.record(
        org=comp.organization_id,
        action="plan.comp_ended",
        target=comp,
        before={"ended_at": None},
        after={"ended_at": ended_at},
        data={"plan": comp.plan_id},
        actor=actor,
    )


def billing_sweep(*, now: datetime | None = None, limit: int = 500) -> int:
    """Apply what time alone changes: grace periods and cancelled periods that ended, comps
    that expired. Bounded; returns how many organizations changed plan."""
    now = now or timezone.now()
    changed = 0
    for comp in (
        PlanComp.objects.filter(ended_at__isnull=True, expires_at__lte=now)
        .select_related("organization")
        .order_by("expires_at")[:limit]
    ):
        with transaction.atomic():
            if PlanComp.objects.filter(pk=comp.pk, ended_at__isnull=True).update(
                ended_at=comp.expires_at
            ):
                _record_comp_end(comp, ended_at=comp.expires_at, actor=audit.SYSTEM)
                changed += bool(
                    plan_reconcile(org=comp.organization, source="comp expired", now=now)
                )
    due = (
        BillingAccount.objects.filter(
            Q(status=SubscriptionStatus.PAST_DUE, grace_until__lte=now)
            | Q(cancel_at_period_end=True, current_period_end__lte=now)
        )
        .exclude(organization__plan=FREE_PLAN)
        .select_related("organization")[:limit]
    )
    for account in due:
        source = "grace ended" if account.status == SubscriptionStatus.PAST_DUE else "period ended"
        changed += bool(plan_reconcile(org=account.organization, source=source, now=now))
    if changed:
        logger.info("billing sweep", extra={"changed": changed})
    return changed


def plans_sync_to_stripe() -> list[tuple[str, str, str]]:
    """Create or update a Stripe Product and monthly Price per paid plan; store price ids.

    Idempotent: products have fixed ids (`healthorch-<code>`), prices a lookup key naming the
    amount and currency, so a second run finds everything and changes nothing. A changed
    amount creates a new price (Stripe prices are immutable) that takes the key over.
    Returns (plan, price id, what happened) per plan.
    """
    gateway.require_configured()
    report = []
    for plan in Plan.objects.filter(monthly_price_cents__gt=0).order_by("sort_order"):
        product_id = f"healthorch-{plan.code}"
        gateway.product_upsert(
            product_id=product_id, name=f"healthorch {plan.name}", metadata={"plan": plan.code}
        )
        key = f"healthorch_{plan.code}_{plan.currency}_{plan.monthly_price_cents}_monthly"
        price = gateway.price_find(lookup_key=key)
        action = "unchanged"
        if price is None:
            price = gateway.price_create(
                product_id=product_id,
                amount_cents=plan.monthly_price_cents,
                currency=plan.currency,
                lookup_key=key,
                metadata={"plan": plan.code},
            )
            action = "created"
        if plan.stripe_price_id != price["id"]:
            Plan.objects.filter(pk=plan.pk).update(stripe_price_id=price["id"])
            action = action if action == "created" else "linked"
        report.append((plan.code, price["id"], action))
    from apps.plans.services import plan_saved

    plan_saved()
    return report
