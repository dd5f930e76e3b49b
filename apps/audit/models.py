"""The audit log: one append-only row per change someone (or something) made.

Rows are written by `apps.audit.services.record` inside the transaction of the change they
describe, so a rolled-back change leaves no entry and a committed one always has its entry.
Nothing in the product updates or deletes them: the model and its queryset refuse, the API is
read-only and the admin is view-only. (Deleting a whole organization still cascades: Django's
collector deletes by primary key without going through these methods, which is what we want
when a tenant is erased.)
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.core.models import TenantQuerySet


class ImmutableAuditEntry(Exception):
    """Raised on any attempt to change or delete an audit row through the ORM."""


class ActorKind(models.TextChoices):
    USER = "user", "User"
    API_KEY = "api_key", "API key"
    OPERATOR = "operator", "Operator"
    SYSTEM = "system", "System"


class AuditQuerySet(TenantQuerySet):
    def update(self, **kwargs):
        raise ImmutableAuditEntry("Audit log entries cannot be changed.")

    def delete(self):
        raise ImmutableAuditEntry("Audit log entries cannot be deleted.")

    # bulk_update goes through update(); bulk_create is allowed (appending is the point).


def _kept_reference(to: str) -> models.ForeignKey:
    """A reference the entry keeps after its target is deleted: no database constraint and
    DO_NOTHING (SET_NULL would have to UPDATE rows that must never change)."""
    return models.ForeignKey(
        to,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )


class AuditEntry(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    at = models.DateTimeField(default=timezone.now, editable=False)
    actor_kind = models.CharField(max_length=10, choices=ActorKind.choices)
    # Who acted (a user or an API key), named even after they are deleted (see _kept_reference).
    actor_user = _kept_reference(settings.AUTH_USER_MODEL)
    actor_api_key = _kept_reference("tenants.ApiKey")
    # Kept even after the user or key is gone: "alice@example.com", `API key "ci" (hk_ab12cd34)`, "system".
    actor_label = models.CharField(max_length=200)
    # "<object type>.<verb>": monitor.created, channel.updated, member.removed, healing.run...
    action = models.CharField(max_length=60)
    object_type = models.CharField(max_length=40)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    # {field: {"before": ..., "after": ...}} for the fields that changed; secrets are redacted.
    changes = models.JSONField(default=dict, blank=True)
    # Facts that are not field changes (a plan change's source, a healing run's attempt id).
    data = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=128, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "audit log entry"
        verbose_name_plural = "audit log"
        indexes = [
            # The API's access paths: newest first per organization, optionally one object type.
            models.Index(fields=["organization", "at"], name="audit_org_time"),
            models.Index(fields=["organization", "object_type", "at"], name="audit_org_type_time"),
            # "What changed on this object", for root-cause analysis.
            models.Index(fields=["organization", "object_id"], name="audit_org_object"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.object_repr}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ImmutableAuditEntry("Audit log entries cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ImmutableAuditEntry("Audit log entries cannot be deleted.")
