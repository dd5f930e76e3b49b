"""Reads for billing: the plan rules as one pure function, and what the API shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone

from apps.billing import gateway
from apps.billing.models import BillingAccount, PlanComp, SubscriptionStatus
from apps.tenants.models import Organization

FREE_PLAN = "free"


@dataclass(frozen=True)
class Decision:
    plan: str
    why: str


def desired_plan(
    *, account: BillingAccount | None, comp: PlanComp | None, now: datetime
) -> Decision:
    """The plan an organization should be on now, from its comp and its subscription.

    - an active comp wins (operators' exceptions are deliberate);
    - active or trialing: the subscribed plan, also after cancelling until the period ends;
    - past_due: the subscribed plan until the grace period ends;
    - anything else (no subscription, canceled, unpaid, incomplete, paused): free.
    """
    if comp is not None and comp.ended_at is None and comp.expires_at > now:
        return Decision(comp.plan_id, f"comp until {comp.expires_at:%Y-%m-%d %H:%M} UTC")
    if account is None or not account.status:
        return Decision(FREE_PLAN, "no subscription")
    status = account.status
    if not account.paid_plan:
        return Decision(FREE_PLAN, f"subscription {status}, price {account.price_id} is no plan")
    if status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING):
        if (
            account.cancel_at_period_end
            and account.current_period_end is not None
            and now >= account.current_period_end
        ):
            return Decision(FREE_PLAN, "cancelled at period end; the period ended")
        if account.cancel_at_period_end:
            return Decision(account.paid_plan, f"subscription {status}, cancels at period end")
        return Decision(account.paid_plan, f"subscription {status}")
    if status == SubscriptionStatus.PAST_DUE:
        if account.grace_until is not None and now < account.grace_until:
            return Decision(
                account.paid_plan, f"payment failed; grace until {account.grace_until:%Y-%m-%d}"
            )
        return Decision(FREE_PLAN, "payment failed and the grace period ended")
    return Decision(FREE_PLAN, f"subscription {status}")


def active_comp(*, org: Organization, now: datetime | None = None) -> PlanComp | None:
    return PlanComp.objects.for_org(org).active(now or timezone.now()).first()


def billing_overview(*, org: Organization) -> dict[str, Any]:
    """What `GET /api/v1/billing` shows: the plan and the subscription behind it."""
    now = timezone.now()
    account = BillingAccount.objects.for_org(org).first()
    comp = active_comp(org=org, now=now)
    return {
        "plan": org.plan_id,
        "subscription_status": account.status if account and account.status else None,
        "subscription_plan": (account.paid_plan or None) if account else None,
        "current_period_end": account.current_period_end if account else None,
        "cancel_at_period_end": bool(account and account.cancel_at_period_end),
        "grace_until": account.grace_until if account else None,
        "comp": (
            {"plan": comp.plan_id, "reason": comp.reason, "expires_at": comp.expires_at}
            if comp
            else None
        ),
    }


def stripe_configured() -> bool:
    """Whether payments are set up (a Stripe key): pages offer Checkout only then."""
    return gateway.is_configured()
