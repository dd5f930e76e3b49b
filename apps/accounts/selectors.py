"""Reads for accounts: second factors, the price list on the front page."""

from __future__ import annotations

from typing import Any

from allauth.mfa.models import Authenticator
from django.db.models import Count, Max

from apps.plans import selectors as plan_selectors
from apps.tenants.models import Organization

#: session key: the signed-in user must set up a second factor before the console
SECOND_FACTOR_PENDING = "accounts.second_factor_pending"


def has_second_factor(user: Any) -> bool:
    """TOTP or a security key (recovery codes alone are not a factor one signs in with)."""
    if not getattr(user, "is_authenticated", False):
        return False
    return Authenticator.objects.filter(
        user_id=user.pk, type__in=[Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN]
    ).exists()


def organizations_requiring_mfa(user: Any) -> list[Organization]:
    return list(
        Organization.objects.filter(memberships__user_id=user.pk, require_mfa=True).order_by("name")
    )


def price_list_version() -> str:
    """Changes whenever a public plan is added, edited or removed: the front page's cache key.

    One aggregate over the small plan table; `updated_at` moves on every save.
    """
    row = plan_selectors.plan_list().aggregate(n=Count("pk"), at=Max("updated_at"))
    stamp = row["at"].timestamp() if row["at"] else 0
    return f"{row['n']}:{stamp:.6f}"


def price_list() -> list[dict[str, Any]]:
    """The public plans as the front page shows them (the same rows as GET /api/v1/plans)."""
    from apps.plans.models import Feature, Limit

    labels = dict(Feature.choices)
    rows = []
    for plan in plan_selectors.plan_list():
        rows.append(
            {
                "code": plan.code,
                "name": plan.name,
                "price": plan.monthly_price_cents / 100,
                "currency": plan.currency.upper(),
                "limits": [
                    (label, getattr(plan, code))
                    for code, label in Limit.choices
                    if code
                    in (
                        Limit.MONITORS,
                        Limit.MIN_INTERVAL_SECONDS,
                        Limit.MEMBERS,
                        Limit.RETENTION_DAYS,
                    )
                ],
                "features": [labels.get(f, f) for f in plan.features],
            }
        )
    return rows
