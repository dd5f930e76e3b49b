"""Base models: every tenant-owned row goes through TenantModel, the one tenancy gate for data;
and the fields rows of several apps declare alike."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Self

from django.conf import settings
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


def denormalised_organization() -> models.ForeignKey:
    """The organization copied onto a row of a table that grows by the million (check results,
    pings, samples, rollups, log lines, timelines), so tenant scoping and retention never join
    through a parent. No index of its own (the table's composite indexes lead with it, where it
    is read by organization) and no reverse accessor (nothing reads these rows from the
    organization)."""
    return models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )


def recorded_user(*, editable: bool = True) -> models.ForeignKey:
    """The user a row names for the record (who acknowledged, wrote, asked, created): optional,
    emptied when that user is deleted, with no reverse accessor on the user."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=editable,
    )
