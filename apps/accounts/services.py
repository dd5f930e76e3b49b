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
from apps.core.errors import ServiceError
from apps.tenants import services as tenants
from apps.tenants.models import Membership, Organization

#: session keys: the organization name typed at sign-up, the invitation being accepted
SIGNUP_ORG_NAME = "accounts.signup_organization"
PENDING_INVITATION = "accounts.pending_invitation"


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
