"""Base models: every tenant-owned row goes through TenantModel, the one tenancy gate for data."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Self

from django.db import models

if TYPE_CHECKING:
    from apps.tenants.models import Organization


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True, editable=False)

    class Meta:
        abstract = True


class TenantQuerySet(models.QuerySet):
    def for_org(self, org: Organization) -> Self:
        """Rows of one organization only. Every tenant read starts here."""
        return self.filter(organization=org)


class TenantModel(TimeStampedModel):
    """A row owned by one organization. Public id is a UUID; other tenants' ids are 404s."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="%(class)ss"
    )

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True
