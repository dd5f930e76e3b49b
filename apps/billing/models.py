"""Billing state per organization: what Stripe last said about its subscription, and comps.

dj-stripe keeps the Stripe objects themselves (Customer linked to the Organization, Event,
WebhookEventTrigger); these rows keep only what the plan rules need, so deciding an
organization's plan is one indexed read, and every decision can be explained in the admin.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.core.models import TenantModel, TenantQuerySet, recorded_user


class SubscriptionStatus(models.TextChoices):
    NONE = "", "No subscription"
    INCOMPLETE = "incomplete", "Incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired", "Incomplete, expired"
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    CANCELED = "canceled", "Canceled"
    UNPAID = "unpaid", "Unpaid"
    PAUSED = "paused", "Paused"


# Statuses in which the customer is paying (or about to): the subscription is "alive".
ALIVE_STATUSES = frozenset(
    {SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING, SubscriptionStatus.PAST_DUE}
)


class BillingAccount(TenantModel):
    """One per organization: its Stripe customer and the last state of its subscription.

    Written only by `apps.billing.services`, always under a row lock and from a subscription
    fetched from Stripe after the lock was taken, so the stored state is never older than a
    state already committed (see services.subscription_refresh).
    """

    stripe_customer_id = models.CharField(max_length=255, blank=True, db_index=True)
    subscription_id = models.CharField(max_length=255, blank=True, db_index=True)
    status = models.CharField(
        max_length=32, choices=SubscriptionStatus.choices, blank=True, default=""
    )
    price_id = models.CharField(max_length=255, blank=True)
    # The plan the Stripe price maps to ("" if the price matches no plan).
    paid_plan = models.CharField(max_length=32, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    past_due_since = models.DateTimeField(null=True, blank=True)
    grace_until = models.DateTimeField(null=True, blank=True)
    grace_warned_at = models.DateTimeField(null=True, blank=True)
    # When the stored state was fetched from Stripe, and by which event or action.
    synced_at = models.DateTimeField(null=True, blank=True)
    synced_by = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["organization__name"]
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="billing_one_account_per_org")
        ]
        indexes = [
            # The sweep's two questions: whose grace ended, whose cancelled period ended.
            models.Index(
                fields=["grace_until"],
                name="billing_grace_due",
                condition=Q(status="past_due"),
            ),
            models.Index(
                fields=["current_period_end"],
                name="billing_period_end_due",
                condition=Q(cancel_at_period_end=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization} ({self.status or 'no subscription'})"


class PlanCompQuerySet(TenantQuerySet):
    def active(self, now) -> PlanCompQuerySet:
        return self.filter(ended_at__isnull=True, expires_at__gt=now)


class PlanComp(TenantModel):
    """A plan given for free by an operator, with a reason, until an expiry.

    While active it wins over the subscription; when it expires (or is ended) the
    organization returns to what its subscription pays for, or free.
    """

    plan = models.ForeignKey(
        "plans.Plan", to_field="code", on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=255)
    expires_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    created_by = recorded_user()

    objects = PlanCompQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "plan comp"
        constraints = [
            models.UniqueConstraint(
                fields=["organization"],
                condition=Q(ended_at__isnull=True),
                name="billing_one_open_comp_per_org",
            )
        ]

    def __str__(self) -> str:
        return f"{self.plan_id} until {self.expires_at:%Y-%m-%d}"
