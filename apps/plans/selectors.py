"""Reads: what an organization's plan allows (cached), and how much of it is used."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from django.core.cache import cache
from django.db.models import QuerySet
from django.utils import timezone

from apps.core.cache import CacheUnavailable
from apps.plans import events
from apps.plans.models import Limit, LimitOverride, Plan, UsageCounter, UsageMetric

if TYPE_CHECKING:
    from apps.tenants.models import Organization

_GEN_KEY = "entitlements:gen"
_TTL_SECONDS = 300


@dataclass(frozen=True)
class Entitlements:
    plan_code: str
    features: frozenset[str]
    limits: dict[str, int | None]
    overridden: frozenset[str] = field(default_factory=frozenset)
    # When the earliest override expires; the cached copy is stale from then on.
    valid_until: datetime | None = None

    def has(self, feature: str) -> bool:
        return feature in self.features

    def limit(self, name: str) -> int | None:
        return self.limits[Limit(name).value]


def _org_key(org_id: object) -> str:
    return f"entitlements:org:{org_id}"


def entitlements_for(org: Organization, *, now: datetime | None = None) -> Entitlements:
    """The features and effective limits (plan + active overrides) of an organization.

    Served from the cache in one round trip; a miss costs one query for the overrides (plus
    one for the plan unless the caller loaded it with the organization, as the API's tenancy
    gate does). Changing a plan, an override or an organization's plan invalidates it.
    While the shared cache is unreachable every lookup is a miss (apps/core/cache.py): the
    answer comes from the database, and the per-process copy below still spares most of them.
    """
    now = now or timezone.now()
    local = _local.get(org.pk)
    if local is not None:
        expires, ent = local
        if time.monotonic() < expires and _usable(ent, org, now):
            return ent
    org_key = _org_key(org.pk)
    cached = cache.get_many([_GEN_KEY, org_key])
    gen = cached.get(_GEN_KEY, 0)
    hit = cached.get(org_key)
    if hit is not None:
        hit_gen, ent = hit
        if hit_gen == gen and _usable(ent, org, now):
            _remember(org.pk, ent)
            return ent
    ent = _compute(org, now)
    cache.set(org_key, (gen, ent), _TTL_SECONDS)
    _remember(org.pk, ent)
    return ent


def _usable(ent: Entitlements, org: Organization, now: datetime) -> bool:
    # The organization row is read fresh with every request, so a plan change (an upgrade
    # paid for a second ago) is seen at once even through a cached copy.
    return ent.plan_code == org.plan_id and (ent.valid_until is None or now < ent.valid_until)


# A few seconds of per-process memory in front of the shared cache: most requests then cost
# no cache round trip at all. Edits of a plan's limits or of an override reach other processes
# within LOCAL_TTL_SECONDS; plan changes are seen at once (see _usable).
LOCAL_TTL_SECONDS = 5.0
_LOCAL_MAX = 10_000
_local: dict[object, tuple[float, Entitlements]] = {}


def _remember(org_id: object, ent: Entitlements) -> None:
    if len(_local) >= _LOCAL_MAX:
        _local.clear()
    _local[org_id] = (time.monotonic() + LOCAL_TTL_SECONDS, ent)


def _compute(org: Organization, now: datetime) -> Entitlements:
    plan: Plan = org.plan
    limits = {name: plan.limit(name) for name in Limit.values}
    overrides = list(
        LimitOverride.objects.for_org(org).active(now).values_list("limit", "value", "expires_at")
    )
    for name, value, _ in overrides:
        limits[name] = value
    expiries = [expires for _, _, expires in overrides if expires is not None]
    return Entitlements(
        plan_code=plan.code,
        features=frozenset(plan.features),
        limits=limits,
        overridden=frozenset(name for name, _, _ in overrides),
        valid_until=min(expiries) if expiries else None,
    )


def invalidate_entitlements(*, org_id: object | None = None) -> None:
    """Forget one organization's cached entitlements, or everyone's (a plan was edited)."""
    if org_id is not None:
        _local.pop(org_id, None)
        cache.delete(_org_key(org_id))
        return
    _local.clear()
    try:
        if not cache.add(_GEN_KEY, 1, None):
            cache.incr(_GEN_KEY)
    except (CacheUnavailable, ValueError):
        # Unreachable (logged once), or the generation expired between add and incr. Other
        # processes see the edit when their cached copy expires (_TTL_SECONDS at most); an
        # organization's own plan change is seen at once whatever the cache holds (_usable).
        pass


# --- Usage ----------------------------------------------------------------------------------


def current_period(*, now: datetime | None = None) -> tuple[date, date]:
    """The billing period containing `now`: the calendar month in UTC, [start, end).

    Billing aligns this with the Stripe subscription once an organization pays.
    """
    today = (now or timezone.now()).astimezone(UTC).date()
    start = today.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def counted_usage(*, org: Organization, limit: str) -> int:
    counter = events.usage_counters.get(limit)
    if counter is None:
        raise LookupError(f"no counter registered for limit {limit!r}")
    return counter(org)


def has_counter(limit: str) -> bool:
    return limit in events.usage_counters


def usage_for_period(*, org: Organization, period_start: date) -> dict[str, int]:
    values = dict(
        UsageCounter.objects.for_org(org)
        .filter(period_start=period_start)
        .values_list("metric", "value")
    )
    return {metric: values.get(metric, 0) for metric in UsageMetric.values}


def plan_list() -> QuerySet[Plan]:
    return Plan.objects.filter(is_public=True).order_by("sort_order", "monthly_price_cents")


# Shown per period next to the plan limit that caps it (None: metered, not capped).
_METRIC_LIMITS = {
    UsageMetric.CHECKS_EXECUTED: None,
    UsageMetric.METRIC_SAMPLES: Limit.METRIC_SAMPLES_PER_MONTH,
    UsageMetric.LOG_LINES: Limit.LOG_LINES_PER_MONTH,
    UsageMetric.NOTIFICATIONS_SENT: Limit.NOTIFICATIONS_PER_MONTH,
    UsageMetric.API_REQUESTS: None,
}


def usage_report(*, org: Organization, now: datetime | None = None) -> dict:
    """This period's counters and current counts next to the effective limits.

    API requests are flushed from each web process every few seconds, so that one number may
    trail by that much.
    """
    ent = entitlements_for(org, now=now)
    start, end = current_period(now=now)
    counters = usage_for_period(org=org, period_start=start)
    usage: dict[str, dict[str, int | None]] = {}
    for limit in (Limit.MONITORS, Limit.MEMBERS):
        if has_counter(limit):
            usage[limit] = {"used": counted_usage(org=org, limit=limit), "limit": ent.limit(limit)}
    for metric, limit in _METRIC_LIMITS.items():
        usage[metric] = {"used": counters[metric], "limit": ent.limit(limit) if limit else None}
    return {
        "plan": ent.plan_code,
        "period_start": start,
        "period_end": end,
        "features": sorted(ent.features),
        "limits": ent.limits,
        "usage": usage,
        "overridden": sorted(ent.overridden),
    }
