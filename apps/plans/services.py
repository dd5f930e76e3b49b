"""Writes for plans: entitlement gates, reservations, usage metering and plan changes.

Every capability asks here: `require_feature` before using a paid feature, `reserve` before
creating something a limit counts, `usage_add` after doing metered work. All refusals raise
`UpgradeRequired`, which every API surface answers with HTTP 402.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.core.errors import ServiceError, UpgradeRequired
from apps.plans import events
from apps.plans.models import Limit, LimitOverride, Plan, PlanChange, UsageCounter, UsageMetric
from apps.plans.selectors import (
    counted_usage,
    current_period,
    entitlements_for,
    invalidate_entitlements,
)

if TYPE_CHECKING:
    from apps.tenants.models import Organization

logger = logging.getLogger(__name__)

# Limits whose use is a count of rows (checked under a lock), and the period limits metered
# by a usage counter (checked by a conditional atomic increment).
_PERIOD_LIMITS = {
    Limit.NOTIFICATIONS_PER_MONTH: UsageMetric.NOTIFICATIONS_SENT,
    Limit.METRIC_SAMPLES_PER_MONTH: UsageMetric.METRIC_SAMPLES,
    Limit.LOG_LINES_PER_MONTH: UsageMetric.LOG_LINES,
}


def require_feature(*, org: Organization, feature: str) -> None:
    """Raise UpgradeRequired unless the organization's plan includes `feature`."""
    ent = entitlements_for(org)
    if not ent.has(feature):
        raise UpgradeRequired(feature=feature, current_plan=ent.plan_code)


def require_interval(*, org: Organization, seconds: int) -> None:
    """Raise UpgradeRequired if `seconds` is below the plan's minimum check interval."""
    ent = entitlements_for(org)
    minimum = ent.limit(Limit.MIN_INTERVAL_SECONDS)
    if minimum is not None and seconds < minimum:
        raise UpgradeRequired(
            feature=Limit.MIN_INTERVAL_SECONDS, current_plan=ent.plan_code, limit=minimum
        )


def reserve(*, org: Organization, limit: str, amount: int = 1) -> None:
    """Claim `amount` of a limit for work the caller is about to commit, or raise 402.

    Counted limits (monitors, members) must be reserved inside the caller's transaction, the
    one that creates the rows: the organization row is locked first, so two requests racing for
    the last slot run one after the other and the second sees the first one's row. Period
    limits (notifications per month) are taken by one conditional atomic increment.
    """
    if amount < 1:
        raise ValueError("amount must be positive")
    ent = entitlements_for(org)
    cap = ent.limit(limit)
    if limit in _PERIOD_LIMITS:
        if not _increment(org=org, metric=_PERIOD_LIMITS[limit], amount=amount, cap=cap):
            used = _period_value(org=org, metric=_PERIOD_LIMITS[limit])
            raise UpgradeRequired(feature=limit, current_plan=ent.plan_code, limit=cap, used=used)
        return
    if not connection.in_atomic_block:
        raise RuntimeError("reserve() of a counted limit must run inside transaction.atomic()")
    if cap is None:
        return
    # The race this lock prevents: two transactions both count N-1 < N and both insert.
    type(org).objects.select_for_update().filter(pk=org.pk).values_list("pk").first()
    used = counted_usage(org=org, limit=limit)
    if used + amount > cap:
        raise UpgradeRequired(feature=limit, current_plan=ent.plan_code, limit=cap, used=used)


# --- Usage metering -------------------------------------------------------------------------

_UPSERT = """
INSERT INTO plans_usagecounter (organization_id, period_start, metric, value, updated_at)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (organization_id, period_start, metric)
DO UPDATE SET value = plans_usagecounter.value + excluded.value, updated_at = excluded.updated_at
{condition}
RETURNING value
"""


def _params(org_id: Any, period_start: Any, metric: str, amount: int, now: datetime) -> list:
    fields = {f.name: f for f in UsageCounter._meta.fields}
    return [
        fields["organization"].get_db_prep_value(org_id, connection),
        fields["period_start"].get_db_prep_value(period_start, connection),
        metric,
        amount,
        fields["updated_at"].get_db_prep_value(now, connection),
    ]


def _increment(
    *, org: Organization, metric: str, amount: int, cap: int | None, now: datetime | None = None
) -> bool:
    """Add `amount` atomically unless that would pass `cap`. One statement, no read first."""
    now = now or timezone.now()
    if cap is not None and amount > cap:
        return False
    start, _ = current_period(now=now)
    condition = "" if cap is None else "WHERE plans_usagecounter.value + excluded.value <= %s"
    params = _params(org.pk, start, metric, amount, now) + ([] if cap is None else [cap])
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT.format(condition=condition), params)
        return cursor.fetchone() is not None


def usage_add(*, org: Organization, metric: str, amount: int = 1) -> None:
    """Meter work already done (checks executed, samples ingested...). Never refuses."""
    if amount:
        _increment(org=org, metric=UsageMetric(metric).value, amount=amount, cap=None)


def usage_add_many(*, counts: Iterable[tuple[Any, str, int]], now: datetime | None = None) -> None:
    """Add many (organization id, metric, amount) at once, e.g. a check batch or a flush."""
    now = now or timezone.now()
    start, _ = current_period(now=now)
    # In one order, whoever calls: two check batches upserting the same organizations' rows
    # in different orders deadlocked, and PostgreSQL rolled one batch back with its results.
    rows = [
        _params(org_id, start, metric, amount, now)
        for org_id, metric, amount in sorted(counts, key=lambda c: (str(c[0]), c[1]))
        if amount
    ]
    if not rows:
        return
    sql = _UPSERT.format(condition="").replace("RETURNING value", "")
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _period_value(*, org: Organization, metric: str) -> int:
    start, _ = current_period()
    row = UsageCounter.objects.for_org(org).filter(period_start=start, metric=metric).first()
    return row.value if row else 0


# --- Plan changes ---------------------------------------------------------------------------


def organization_change_plan(
    *,
    org: Organization,
    plan_code: str,
    source: str,
    actor: AbstractBaseUser | None = None,
    reason: str = "",
) -> PlanChange | None:
    """Move an organization to another plan and apply the consequences, all or nothing.

    Downgrades lose nothing: handlers pause what no longer fits and raise what is now too
    low, recording why. Upgrades restore nothing automatically; they only lift the limits.
    Returns the recorded change, or None if the organization already was on that plan.
    """
    plan = Plan.objects.filter(code=plan_code).first()
    if plan is None:
        raise ServiceError(f"Unknown plan '{plan_code}'.", field="plan", code="unknown_plan")
    with transaction.atomic():
        locked = type(org).objects.select_for_update().select_related("plan").get(pk=org.pk)
        old = locked.plan
        if old.code == plan.code:
            return None
        locked.plan = plan
        locked.save(update_fields=["plan", "updated_at"])
        invalidate_entitlements(org_id=org.pk)
        effects = {
            name: handler(org=locked, old_plan=old, new_plan=plan)
            for name, handler in events.plan_change_handlers.items()
        }
        change = PlanChange.objects.create(
            organization=locked,
            from_plan=old.code,
            to_plan=plan.code,
            actor=actor,
            source=source,
            reason=reason,
            effects={k: v for k, v in effects.items() if v},
        )
        audit.record(
            org=locked,
            action="plan.changed",
            target=locked,
            object_type="plan",
            before={"plan": old.code},
            after={"plan": plan.code},
            data={"source": source, "reason": reason},
        )
        transaction.on_commit(lambda: invalidate_entitlements(org_id=org.pk))
    org.plan = plan
    logger.info(
        "plan changed: %s from %s to %s (%s)",
        org.slug,
        old.code,
        plan.code,
        source,
        extra={"org": org.slug, "from": old.code, "to": plan.code, "source": source},
    )
    return change


def limit_override_set(
    *,
    org: Organization,
    limit: str,
    value: int | None,
    reason: str,
    expires_at: datetime | None = None,
    actor: AbstractBaseUser | None = None,
) -> LimitOverride:
    """Give one organization a different limit than its plan's (operators only)."""
    if not reason.strip():
        raise ServiceError("Say why this organization gets an exception.", field="reason")
    fields = ["value", "reason", "expires_at"]
    with transaction.atomic():
        existing = LimitOverride.objects.filter(organization=org, limit=Limit(limit).value).first()
        before = audit.snapshot(existing, fields=fields) if existing else {}
        override, _ = LimitOverride.objects.update_or_create(
            organization=org,
            limit=Limit(limit).value,
            defaults={
                "value": value,
                "reason": reason,
                "expires_at": expires_at,
                "created_by": actor,
            },
        )
        audit.record(
            org=org,
            action="plan.limit_overridden",
            target=override,
            before=before,
            after=audit.snapshot(override, fields=fields),
            data={"limit": override.limit},
        )
        transaction.on_commit(lambda: invalidate_entitlements(org_id=org.pk))
    return override


def limit_override_remove(*, override: LimitOverride) -> None:
    org_id = override.organization_id
    with transaction.atomic():
        audit.record(
            org=org_id,
            action="plan.limit_override_removed",
            target=override,
            before=audit.snapshot(override, fields=["value", "reason", "expires_at"]),
            after={},
            data={"limit": override.limit},
        )
        override.delete()
        transaction.on_commit(lambda: invalidate_entitlements(org_id=org_id))


def plan_saved() -> None:
    """A plan's features or limits were edited: every cached entitlement is stale."""
    transaction.on_commit(lambda: invalidate_entitlements())


def plans_ensure_defaults() -> int:
    """Create any missing default plan (never touches existing ones); returns how many."""
    from apps.plans.defaults import DEFAULT_PLANS

    created = 0
    for spec in DEFAULT_PLANS:
        _, made = Plan.objects.get_or_create(
            code=spec["code"], defaults={k: v for k, v in spec.items() if k != "code"}
        )
        created += made
    if created:
        plan_saved()
    return created
