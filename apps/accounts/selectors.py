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


def sso_by_provider_id(provider_id: str) -> Any:
    """The organization's single sign-on that allauth names `provider_id`, if it may be used
    now: enabled, its domain verified, and the organization's plan has `sso`."""
    import uuid

    if not provider_id.startswith("sso-"):
        return None
    try:
        pk = uuid.UUID(provider_id.removeprefix("sso-"))
    except ValueError:
        return None
    return _usable_sso(pk=pk)


def sso_for_email(email: str) -> Any:
    """The usable single sign-on for an email's domain, or None."""

    domain = email.strip().lower().rpartition("@")[2]
    if not domain:
        return None
    return _usable_sso(domain=domain)


def _usable_sso(**lookup: Any) -> Any:
    """The single sign-on `lookup` finds, if it may be used now (see sso_by_provider_id)."""
    from apps.accounts.models import SingleSignOn

    sso = (
        SingleSignOn.objects.select_related("organization")
        .filter(**lookup, enabled=True, domain_verified_at__isnull=False)
        .first()
    )
    return sso if sso is not None and _sso_allowed(sso) else None


def sso_of(*, org: Organization) -> Any:
    from apps.accounts.models import SingleSignOn

    return SingleSignOn.objects.for_org(org).first()


def _sso_allowed(sso: Any) -> bool:
    return plan_selectors.entitlements_for(sso.organization).has("sso")
