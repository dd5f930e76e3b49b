"""Writes for accounts: what happens when someone signs in in the browser.

Organizations, members and invitations belong to apps.tenants; this module decides, at each
sign-in, which of its services to call.
"""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from django.db import transaction
from django.http import HttpRequest

from apps.accounts.selectors import (
    SECOND_FACTOR_PENDING,
    has_second_factor,
    organizations_requiring_mfa,
)
from apps.audit.services import user_actor
from apps.core.errors import ServiceError, UpgradeRequired
from apps.tenants import services as tenants
from apps.tenants.models import Membership, Organization, Role

#: session keys: the organization name typed at sign-up, the invitation being accepted
SIGNUP_ORG_NAME = "accounts.signup_organization"
PENDING_INVITATION = "accounts.pending_invitation"
#: the organization whose provider the person signed in through (set by apps.accounts.sso)
SSO_ORGANIZATION = "accounts.sso_organization"


def default_organization_name(email: str) -> str:
    local = email.split("@", 1)[0] or "my"
    return f"{local}'s organization"


def account_signed_in(*, request: HttpRequest, user: Any) -> str | None:
    """After every browser sign-in (password, email confirmation, SSO), in this order:

    1. an invitation opened before signing in is accepted (a refusal becomes a message);
    2. a user who belongs to no organization and is not an operator gets one of their own,
       on the free plan, as its owner (the name typed at sign-up, or one made from the email);
    3. if an organization of theirs requires a second factor and they have none, the console
       waits until they set one up (apps.accounts.middleware).

    Returns a message for the user when an invitation was refused, else None.
    """
    refusal = None
    token = request.session.pop(PENDING_INVITATION, None)
    if token:
        try:
            tenants.invitation_accept(token=token, user=user)
        except ServiceError as exc:
            refusal = exc.detail
    sso_org = request.session.pop(SSO_ORGANIZATION, None)
    if sso_org:
        # Signed in through the organization's provider: a member of it from now on.
        org = Organization.objects.get(pk=sso_org)
        try:
            tenants.member_join(org=org, user=user, role=Role.MEMBER, actor=user_actor(user))
        except UpgradeRequired:
            refusal = f"{org.name} has no room for another member on its plan."
    organization_ensure(user=user, name=request.session.pop(SIGNUP_ORG_NAME, None))
    if organizations_requiring_mfa(user) and not has_second_factor(user):
        request.session[SECOND_FACTOR_PENDING] = True
    else:
        request.session.pop(SECOND_FACTOR_PENDING, None)
    return refusal


def organization_ensure(*, user: Any, name: str | None = None) -> Organization | None:
    """Give a user without any membership an organization of their own (free plan, owner).

    Operators (staff) run the platform and get none. Two sign-ins of the same new user at
    once could both see no membership: the user row is locked first, so the second waits and
    then sees the first one's organization.
    """
    if user.is_staff or user.is_superuser:
        return None
    with transaction.atomic():
        type(user).objects.select_for_update().filter(pk=user.pk).first()
        if Membership.objects.filter(user_id=user.pk).exists():
            return None
        return tenants.organization_create(
            name=(name or "").strip() or default_organization_name(user.email), owner=user
        )


def email_mark_verified(*, user: Any) -> None:
    """Record the user's email as verified and primary (accounts made by an operator or the
    demo, whose address nobody needs to prove by clicking a link)."""
    EmailAddress.objects.update_or_create(
        user=user,
        email=user.email.lower(),
        defaults={"verified": True, "primary": True},
    )


# --- Single sign-on -------------------------------------------------------------------------


def sso_configure(
    *,
    org: Organization,
    issuer: str,
    client_id: str,
    domain: str,
    client_secret: str | None = None,
    enabled: bool = True,
) -> Any:
    """Set the organization's OpenID Connect provider (a plan feature, `sso`).

    The secret is encrypted at rest; left out on a change, the stored one is kept. A new
    domain waits for an operator's verification again. A domain another organization uses is
    refused.
    """
    from urllib.parse import urlsplit

    from django.conf import settings

    from apps.accounts.models import SingleSignOn
    from apps.audit import services as audit
    from apps.core.crypto import encrypt
    from apps.plans.services import require_feature

    require_feature(org=org, feature="sso")
    parts = urlsplit(issuer.strip())
    local = settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS
    if parts.scheme not in (("https", "http") if local else ("https",)) or not parts.hostname:
        raise ServiceError("The issuer must be an https:// URL.", field="issuer", code="invalid")
    domain = domain.strip().lower().lstrip("@")
    if "." not in domain or "/" in domain or "@" in domain:
        raise ServiceError(
            "Give the email domain alone, e.g. example.com.", field="domain", code="invalid"
        )
    if SingleSignOn.objects.filter(domain=domain).exclude(organization=org).exists():
        raise ServiceError("Another organization uses this domain.", field="domain", code="taken")
    with transaction.atomic():
        sso = SingleSignOn.objects.select_for_update().filter(organization=org).first()
        if sso is None:
            if not client_secret:
                raise ServiceError(
                    "The client secret is required.", field="client_secret", code="required"
                )
            sso = SingleSignOn(organization=org)
        before = audit.snapshot(sso, fields=["issuer", "client_id", "domain", "enabled"])
        if sso.domain != domain:
            sso.domain_verified_at = None
        sso.issuer = issuer.strip().rstrip("/")
        sso.client_id = client_id.strip()
        sso.domain = domain
        sso.enabled = enabled
        if client_secret:
            sso.client_secret_encrypted = encrypt(client_secret)
        sso.save()
        audit.record(
            org=org,
            action="sso.configured",
            target=sso,
            before=before if sso.created_at != sso.updated_at else None,
            after=audit.snapshot(sso, fields=["issuer", "client_id", "domain", "enabled"]),
        )
    return sso


def sso_remove(*, org: Organization) -> None:
    from apps.accounts.models import SingleSignOn
    from apps.audit import services as audit

    with transaction.atomic():
        for sso in SingleSignOn.objects.filter(organization=org):
            audit.record(org=org, action="sso.removed", target=sso, object_repr=sso.domain)
            sso.delete()


def sso_verify_domain(*, sso: Any, verified: bool = True) -> Any:
    """An operator has checked that the organization owns the domain (or takes it back)."""
    from django.utils import timezone

    from apps.audit import services as audit

    sso.domain_verified_at = timezone.now() if verified else None
    with transaction.atomic():
        sso.save(update_fields=["domain_verified_at", "updated_at"])
        audit.record(
            org=sso.organization_id,
            action="sso.domain_verified" if verified else "sso.domain_unverified",
            target=sso,
            object_repr=sso.domain,
        )
    return sso
