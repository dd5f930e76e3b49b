"""Organizations (tenants), their members and their API keys."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from apps.core.models import TenantModel, TenantQuerySet, TimeStampedModel, recorded_user


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"
    VIEWER = "viewer", "Viewer"


class Organization(TimeStampedModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=64, unique=True)
    # Keyed by the plan's code (column "plan"), so `plan_id` is the code ("free") without a join.
    plan = models.ForeignKey(
        "plans.Plan",
        to_field="code",
        db_column="plan",
        on_delete=models.PROTECT,
        default="free",
        related_name="organizations",
    )
    billing_email = models.EmailField(blank=True)
    # Every member must sign in with a second factor before the console lets them in
    # (a plan feature, `mfa_enforcement`; checked at each sign-in by apps.accounts).
    require_mfa = models.BooleanField(default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def email(self) -> str:
        """Where Stripe sends receipts (dj-stripe's subscriber contract needs `email`)."""
        if self.billing_email:
            return self.billing_email
        owner = (
            self.memberships.filter(role=Role.OWNER).select_related("user").order_by("created_at")
        ).first()
        return owner.user.email if owner else ""


class Membership(TimeStampedModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="membership_unique_user"),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="membership_role_valid"),
        ]
        indexes = [models.Index(fields=["user", "created_at"], name="membership_user_first")]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"


class ApiKeyScope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Write"


class ApiKey(TenantModel):
    """An organization's machine credential.

    The secret (``hk_<prefix>_<random>``) is shown once. Only its SHA-256 is stored: the secret
    carries 256 bits of randomness, so a fast hash is as safe as a slow one here and lets a
    request be authenticated with one indexed lookup instead of a password-hash computation.
    """

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list)
    created_by = recorded_user(editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"
        indexes = [models.Index(fields=["organization", "created_at"], name="apikey_org_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_active(self, now: timezone.datetime | None = None) -> bool:
        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


class Invitation(TenantModel):
    """An invitation by email to join the organization with a role.

    The link's token is shown once (in the email); only its SHA-256 is stored, as for API keys.
    It can be used once, until it expires or is revoked, by a signed-in user whose email is the
    invited one.
    """

    email = models.EmailField()
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = recorded_user(editable=False)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True, editable=False)
    accepted_by = recorded_user(editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(role__in=Role.values), name="invitation_role_valid"),
        ]
        indexes = [
            models.Index(fields=["organization", "created_at"], name="invitation_org_created")
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.organization_id} ({self.role})"

    @property
    def state(self) -> str:
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        return "pending"
