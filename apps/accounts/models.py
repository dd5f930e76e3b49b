"""An organization's single sign-on: its OpenID Connect provider and the email domain whose
people sign in through it."""

from __future__ import annotations

from django.db import models

from apps.core import crypto
from apps.core.models import TenantModel


class SingleSignOn(TenantModel):
    """One per organization. The client secret is encrypted at rest (apps.core.crypto) and
    never shown again. People of `domain` sign in through the provider only once an operator
    has verified that the organization owns the domain (`domain_verified_at`): otherwise any
    organization could claim another's addresses."""

    issuer = models.URLField(max_length=500)
    client_id = models.CharField(max_length=255)
    client_secret_encrypted = models.TextField(editable=False)
    domain = models.CharField(max_length=253, unique=True)
    domain_verified_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)

    class Meta:
        verbose_name = "single sign-on"
        constraints = [
            models.UniqueConstraint(fields=["organization"], name="sso_one_per_organization")
        ]

    def __str__(self) -> str:
        return f"{self.domain} via {self.issuer}"

    @property
    def provider_id(self) -> str:
        """allauth's name for this provider, in the sign-in URLs; stable across renames."""
        return f"sso-{self.pk.hex}"


crypto.stored_encrypted(SingleSignOn, "client_secret_encrypted")
