"""Writes for tenants, members and API keys. Views, admin actions and commands call these."""

from __future__ import annotations

import hashlib
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from rest_framework.authtoken.models import Token

from apps.audit import services as audit
from apps.core.errors import Conflict, ServiceError, UpgradeRequired
from apps.tenants.models import ApiKey, ApiKeyScope, Invitation, Membership, Organization, Role

# Sign-in throttles, one set for the API's login and the console's form (see that module).
from apps.tenants.throttling import login_failure_record as login_failure_record
from apps.tenants.throttling import login_failures_clear as login_failures_clear
from apps.tenants.throttling import login_retry_after as login_retry_after
from apps.tenants.throttling import login_throttles_clear as login_throttles_clear

User = get_user_model()

API_KEY_PREFIX = "hk_"
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits


def hash_api_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    secret: str  # shown to the caller once, never stored


def _unique_slug(name: str) -> str:
    base = slugify(name)[:48] or "org"
    slug = base
    while Organization.objects.filter(slug=slug).exists():
        slug = f"{base}-{secrets.token_hex(3)}"
    return slug


def organization_create(*, name: str, owner: AbstractBaseUser | None = None) -> Organization:
    """Create an organization on the free plan; `owner`, if given, becomes its first owner."""
    name = name.strip()
    if not name:
        raise ServiceError("Organization name may not be blank.", field="name", code="blank")
    with transaction.atomic():
        org = Organization.objects.create(name=name, slug=_unique_slug(name))
        if owner is not None:
            # The founder adds themselves (registration has no signed-in user yet).
            owner_ensure(org=org, user=owner, actor=audit.user_actor(owner))
    return org


def owner_ensure(*, org: Organization, user: AbstractBaseUser, actor: Any) -> bool:
    """Make `user` an owner of `org` unless they already are a member (whatever their role);
    recorded as added by `actor`. True if they were added."""
    with transaction.atomic():
        membership, added = Membership.objects.get_or_create(
            organization=org, user=user, defaults={"role": Role.OWNER}
        )
        if added:
            audit.record(
                org=org,
                action="member.added",
                target=membership,
                object_repr=user.email,
                after={"role": Role.OWNER},
                actor=actor,
            )
    return added


def member_join(*, org: Organization, user: AbstractBaseUser, role: str, actor: Any) -> bool:
    """Make `user` a member of `org` with `role` unless they already are one (their role is
    then kept); the plan's member limit applies. True if they were added."""
    _check_role_value(role)
    with transaction.atomic():
        if Membership.objects.filter(organization=org, user=user).exists():
            return False
        _membership_create(org, user, role, actor=actor)
    return True


def _membership_create(
    org: Organization, user: AbstractBaseUser, role: str, **record: Any
) -> Membership:
    """Add `user` to `org` with `role` within the plan's member limit, and record it (`record`:
    more of the audit entry)."""
    from apps.plans.models import Limit
    from apps.plans.services import reserve

    reserve(org=org, limit=Limit.MEMBERS)
    membership = Membership.objects.create(organization=org, user=user, role=role)
    audit.record(
        org=org,
        action="member.added",
        target=membership,
        object_repr=user.email,
        after={"role": role},
        **record,
    )
    return membership


def organization_update(
    *,
    org: Organization,
    name: str | None = None,
    slug: str | None = None,
    billing_email: str | None = None,
) -> Organization:
    changed: list[str] = []
    if name is not None:
        org.name = name.strip()
        changed.append("name")
    if slug is not None and slug != org.slug:
        if Organization.objects.filter(slug=slug).exclude(pk=org.pk).exists():
            raise ServiceError("This slug is already taken.", field="slug", code="taken")
        org.slug = slug
        changed.append("slug")
    if billing_email is not None:
        org.billing_email = billing_email
        changed.append("billing_email")
    if changed:
        org.save(update_fields=[*changed, "updated_at"])
    return org


def user_register(*, email: str, password: str, organization_name: str) -> tuple[Organization, str]:
    """Create a user, their organization (free plan) and owner membership; return a token.

    All or nothing: a duplicate email or a weak password leaves no user and no organization.
    """
    email = User.objects.normalize_email(email).lower()
    candidate = User(username=email, email=email)
    try:
        validate_password(password, user=candidate)
    except ValidationError as exc:
        raise ServiceError(" ".join(exc.messages), field="password", code="weak_password") from exc
    try:
        with transaction.atomic():
            if User.objects.filter(email__iexact=email).exists():
                raise ServiceError(
                    "An account with this email already exists.", field="email", code="taken"
                )
            user = User.objects.create_user(username=email, email=email, password=password)
            org = organization_create(name=organization_name, owner=user)
            token = Token.objects.create(user=user)
    except IntegrityError as exc:  # a concurrent registration with the same email won the race
        raise ServiceError(
            "An account with this email already exists.", field="email", code="taken"
        ) from exc
    return org, token.key


def user_token(*, user: AbstractBaseUser) -> str:
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def api_key_create(
    *,
    org: Organization,
    name: str,
    scopes: list[str],
    created_by: AbstractBaseUser | None = None,
    expires_at: datetime | None = None,
) -> IssuedApiKey:
    """Mint a key. The returned secret is the only copy; the database keeps its hash."""
    normalized = _normalize_scopes(scopes)
    if expires_at is not None and expires_at <= timezone.now():
        raise ServiceError("Expiry must be in the future.", field="expires_at", code="past")
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(8))
    secret = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        key = ApiKey.objects.create(
            organization=org,
            name=name.strip() or "API key",
            prefix=f"{API_KEY_PREFIX}{prefix}",
            key_hash=hash_api_key(secret),
            scopes=normalized,
            created_by=created_by,
            expires_at=expires_at,
        )
        audit.record(org=org, action="apikey.created", target=key, after=audit.snapshot(key))
    return IssuedApiKey(api_key=key, secret=secret)


def _normalize_scopes(scopes: list[str]) -> list[str]:
    allowed = set(ApiKeyScope.values)
    unknown = [s for s in scopes if s not in allowed]
    if unknown or not scopes:
        raise ServiceError(
            f"Scopes must be a non-empty subset of {sorted(allowed)}.",
            field="scopes",
            code="invalid",
        )
    chosen = set(scopes)
    if ApiKeyScope.WRITE in chosen:
        chosen.add(ApiKeyScope.READ)  # a key that may write may also read what it wrote
    return sorted(chosen)


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke a key; idempotent. The row stays for audit until the hourly purge."""
    if api_key.revoked_at is None:
        with transaction.atomic():
            # Compare-and-set so two concurrent revocations keep the first timestamp.
            if ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            ):
                audit.record(org=api_key.organization_id, action="apikey.revoked", target=api_key)
        api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


def api_key_touch(*, api_key: ApiKey, now: datetime | None = None) -> None:
    """Record use at most once per resolution window, so authentication stays a read.

    The conditional UPDATE makes concurrent requests write at most once per window too.
    """
    now = now or timezone.now()
    window = timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
    if api_key.last_used_at is not None and now - api_key.last_used_at < window:
        return
    cutoff = now - window
    ApiKey.objects.filter(pk=api_key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=cutoff)
    ).update(last_used_at=now)
    api_key.last_used_at = now


_UNSET: Any = object()


def api_key_update(*, api_key: ApiKey, name: str | None = None, expires_at: Any = _UNSET) -> ApiKey:
    """Rename a key or change its expiry (scopes never change: mint a new key instead)."""
    before = audit.snapshot(api_key, fields=["name", "expires_at"])
    if name is not None:
        api_key.name = name.strip() or "API key"
    if expires_at is not _UNSET:
        api_key.expires_at = expires_at
    with transaction.atomic():
        api_key.save(update_fields=["name", "expires_at"])
        audit.record(
            org=api_key.organization_id, action="apikey.updated", target=api_key, before=before
        )
    return api_key


def api_key_delete(*, api_key: ApiKey) -> None:
    """Delete a key outright (the console); its audit entries keep naming it."""
    with transaction.atomic():
        audit.record(
            org=api_key.organization_id,
            action="apikey.deleted",
            target=api_key,
            before=audit.snapshot(api_key, fields=["name", "prefix", "scopes", "revoked_at"]),
        )
        api_key.delete()


def api_keys_purge_dead(*, older_than_days: int = 30) -> int:
    """Delete keys revoked or expired long ago (hourly, by the system), each one recorded."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    dead = ApiKey.objects.filter(Q(revoked_at__lt=cutoff) | Q(expires_at__lt=cutoff))
    with transaction.atomic():
        rows = list(dead.values("pk", "organization_id", "name", "prefix"))
        for row in rows:
            audit.record(
                org=row["organization_id"],
                action="apikey.deleted",
                object_type="apikey",
                object_id=row["pk"],
                object_repr=f"{row['name']} ({row['prefix']}…)",
                before={"name": row["name"], "prefix": row["prefix"]},
                data={"cause": f"purged: revoked or expired over {older_than_days} days ago"},
                actor=audit.system_actor("api key purge"),
            )
        deleted, _ = ApiKey.objects.filter(pk__in=[r["pk"] for r in rows]).delete()
    return deleted


# --- Members --------------------------------------------------------------------------------


def member_add(*, org: Organization, email: str, role: str, actor_role: str) -> Membership:
    """Add an existing user to the organization. Only owners may create owners."""
    _check_role_value(role)
    if role == Role.OWNER and actor_role != Role.OWNER:
        raise ServiceError("Only an owner can add another owner.", field="role", code="forbidden")
    user = User.objects.filter(email__iexact=email.strip()).first()
    if user is None:
        raise ServiceError(
            "No healthorch account uses this email; ask them to register first.",
            field="email",
            code="unknown_user",
        )
    already = ServiceError("This user is already a member.", field="email", code="already_member")
    with transaction.atomic():
        if Membership.objects.filter(organization=org, user=user).exists():
            raise already  # said before any plan limit: adding them again would change nothing
        try:
            with transaction.atomic():
                return _membership_create(org, user, role)
        except IntegrityError as exc:  # a concurrent add of the same user won
            raise already from exc


def member_change_role(*, membership: Membership, role: str, actor_role: str) -> Membership:
    """Change a member's role, keeping at least one owner (even under concurrent changes)."""
    _check_role_value(role)
    if Role.OWNER in (role, membership.role) and actor_role != Role.OWNER:
        raise ServiceError(
            "Only an owner can grant or take away the owner role.", field="role", code="forbidden"
        )
    with transaction.atomic():
        current = _lock_for_owner_change(membership)
        if current.role == Role.OWNER and role != Role.OWNER:
            _ensure_another_owner(current)
        before = {"role": current.role}
        current.role = role
        current.save(update_fields=["role", "updated_at"])
        audit.record(
            org=current.organization_id,
            action="member.role_changed",
            target=current,
            object_repr=current.user.email,
            before=before,
        )
    return current


def member_remove(*, membership: Membership, actor_role: str, actor_is_self: bool) -> None:
    """Remove a member (or let a member leave), never the last owner."""
    if membership.role == Role.OWNER and actor_role != Role.OWNER and not actor_is_self:
        raise ServiceError("Only an owner can remove an owner.", code="forbidden")
    with transaction.atomic():
        current = _lock_for_owner_change(membership)
        if current.role == Role.OWNER:
            _ensure_another_owner(current)
        audit.record(
            org=current.organization_id,
            action="member.removed",
            target=current,
            object_repr=current.user.email,
            before={"role": current.role},
        )
        current.delete()


def _lock_for_owner_change(membership: Membership) -> Membership:
    # Two owners demoting each other at once would each see the other as the remaining owner
    # and leave the organization ownerless. Locking the organization row serialises every
    # owner-affecting change within one organization, so the second one sees the first.
    Organization.objects.select_for_update().filter(pk=membership.organization_id).first()
    return Membership.objects.select_related("user").get(pk=membership.pk)


def _ensure_another_owner(membership: Membership) -> None:
    others = (
        Membership.objects.filter(organization_id=membership.organization_id, role=Role.OWNER)
        .exclude(pk=membership.pk)
        .exists()
    )
    if not others:
        raise Conflict(
            "An organization must keep at least one owner; make someone else owner first.",
            code="last_owner",
        )


def _check_role_value(role: str) -> None:
    if role not in Role.values:
        raise ServiceError(
            f"'{role}' is not a role; choose one of {', '.join(Role.values)}.",
            field="role",
            code="invalid",
        )


# --- Invitations ----------------------------------------------------------------------------

INVITATION_DAYS = 7


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    token: str  # in the email's link only, never stored
    link: str


def _invitation_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_create(
    *,
    org: Organization,
    email: str,
    role: str,
    actor_role: str,
    invited_by: AbstractBaseUser | None,
    base_url: str,
) -> IssuedInvitation:
    """Invite `email` to join with `role` and send them the link (after the commit).

    Owners and admins invite; only owners invite owners. Someone already a member, or an
    address with a pending invitation, is refused. The plan's member limit is checked now
    (an invitation that could never be accepted is not sent) and again when it is accepted.
    """
    _check_role_value(role)
    if role == Role.OWNER and actor_role != Role.OWNER:
        raise ServiceError(
            "Only an owner can invite another owner.", field="role", code="forbidden"
        )
    email = User.objects.normalize_email(email.strip()).lower()
    if Membership.objects.filter(organization=org, user__email__iexact=email).exists():
        raise ServiceError("This person is already a member.", field="email", code="already_member")
    from apps.plans.models import Limit
    from apps.plans.selectors import counted_usage, entitlements_for

    cap = entitlements_for(org).limit(Limit.MEMBERS)
    if cap is not None and counted_usage(org=org, limit=Limit.MEMBERS) >= cap:
        raise UpgradeRequired(feature=Limit.MEMBERS, current_plan=org.plan_id, limit=cap)
    now = timezone.now()
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        Organization.objects.select_for_update().filter(pk=org.pk).first()
        pending = Invitation.objects.filter(
            organization=org,
            email__iexact=email,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=now,
        )
        if pending.exists():
            raise ServiceError(
                "This address already has a pending invitation; revoke it to send a new one.",
                field="email",
                code="already_invited",
            )
        invitation = Invitation.objects.create(
            organization=org,
            email=email,
            role=role,
            token_hash=_invitation_hash(token),
            invited_by=invited_by,
            expires_at=now + timedelta(days=INVITATION_DAYS),
        )
        audit.record(
            org=org,
            action="invitation.created",
            target=invitation,
            object_repr=email,
            after={"role": role},
        )
        base = settings.HEALTHORCH_PUBLIC_URL or base_url
        link = base.rstrip("/") + reverse("invitation-accept", args=[token])
        inviter = getattr(invited_by, "email", "") or "An administrator"
        subject = f"[healthorch] {inviter} invited you to {org.name}"
        body = (
            f"{inviter} invited you to join {org.name} on healthorch as {role}.\n\n"
            f"Open this link to accept (it works once, for {INVITATION_DAYS} days):\n{link}\n\n"
            "Sign in with, or create an account for, this email address. If you did not "
            "expect this invitation, ignore this message.\n"
        )
        transaction.on_commit(lambda: send_mail(subject, body, None, [email]))
    return IssuedInvitation(invitation=invitation, token=token, link=link)


def invitation_find(*, token: str) -> Invitation:
    """The invitation a link names, whatever its state; ServiceError(not_found) if none."""
    invitation = (
        Invitation.objects.select_related("organization")
        .filter(token_hash=_invitation_hash(token))
        .first()
    )
    if invitation is None:
        raise ServiceError("This invitation link is not valid.", code="not_found")
    return invitation


def invitation_accept(*, token: str, user: AbstractBaseUser) -> Membership:
    """Join the invitation's organization with its role; the invitation is then used up.

    Refused when the link is unknown, used, revoked or expired, or when the signed-in user's
    email is not the invited one. A user who is already a member keeps their role and the
    invitation is used up. Two accepts of one link at once: the row is locked, the second
    sees it used.
    """
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .filter(token_hash=_invitation_hash(token))
            .first()
        )
        if invitation is None:
            raise ServiceError("This invitation link is not valid.", code="not_found")
        state = invitation.state
        if state != "pending":
            raise ServiceError(f"This invitation was {state}.", code=f"invitation_{state}")
        if (user.email or "").strip().lower() != invitation.email.lower():
            raise ServiceError(
                f"This invitation is for {invitation.email}; sign in with that address.",
                code="wrong_account",
            )
        org = invitation.organization
        membership = Membership.objects.filter(organization=org, user=user).first()
        if membership is None:
            membership = _membership_create(
                org,
                user,
                invitation.role,
                data={"invitation": str(invitation.pk)},
                actor=audit.user_actor(user),
            )
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by", "updated_at"])
    return membership


def invitation_revoke(*, invitation: Invitation) -> Invitation:
    """Revoke a pending invitation (its link stops working); idempotent."""
    with transaction.atomic():
        if Invitation.objects.filter(
            pk=invitation.pk, revoked_at__isnull=True, accepted_at__isnull=True
        ).update(revoked_at=timezone.now()):
            audit.record(
                org=invitation.organization_id,
                action="invitation.revoked",
                target=invitation,
                object_repr=invitation.email,
            )
    invitation.refresh_from_db(fields=["revoked_at", "accepted_at"])
    return invitation


def organization_require_mfa(*, org: Organization, required: bool) -> Organization:
    """Require (or stop requiring) a second factor of every member at sign-in.

    Turning it on is a plan feature (`mfa_enforcement`, pro and up); turning it off never is.
    """
    if required:
        from apps.plans.services import require_feature

        require_feature(org=org, feature="mfa_enforcement")
    if org.require_mfa != required:
        with transaction.atomic():
            before = {"require_mfa": org.require_mfa}
            org.require_mfa = required
            org.save(update_fields=["require_mfa", "updated_at"])
            audit.record(
                org=org,
                action="organization.updated",
                target=org,
                before=before,
                after={"require_mfa": required},
            )
    return org
