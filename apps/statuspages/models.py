"""Status pages and what they publish: sections of monitors, incident updates, postmortems,
email subscribers and monitor badges."""

from __future__ import annotations

import secrets
import uuid

from django.db import models
from django.db.models import Q

from apps.core.models import TenantModel, recorded_user


def new_access_token() -> str:
    # 192 bits from the OS CSPRNG: a private page's link cannot be guessed.
    return secrets.token_urlsafe(24)


class StatusPage(TenantModel):
    name = models.CharField(max_length=200)
    # Globally unique: the public URL is /status/<slug>/ without the organization in it.
    slug = models.SlugField(max_length=60, unique=True)
    description = models.TextField(blank=True)
    # Visitors get a 404 until it is published (publishing needs the `status_pages` feature).
    published = models.BooleanField(default=True)
    # Private pages need the password or the token link.
    private = models.BooleanField(default=False)
    password_hash = models.CharField(max_length=200, blank=True, editable=False)
    access_token = models.CharField(max_length=64, unique=True, default=new_access_token)
    # How far back resolved incidents are listed.
    history_days = models.PositiveSmallIntegerField(default=14)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(history_days__gte=1) & Q(history_days__lte=90),
                name="status_page_history_days_range",
            )
        ]

    def __str__(self) -> str:
        return self.name


class StatusPageSection(TenantModel):
    page = models.ForeignKey(StatusPage, on_delete=models.CASCADE, related_name="sections")
    name = models.CharField(max_length=200)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "created_at"]
        indexes = [models.Index(fields=["page", "position"], name="status_section_order")]

    def __str__(self) -> str:
        return self.name


class StatusPageMonitor(TenantModel):
    """A monitor shown in a section, in order, optionally under a public name."""

    section = models.ForeignKey(StatusPageSection, on_delete=models.CASCADE, related_name="items")
    monitor = models.ForeignKey(
        "monitors.Monitor", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    display_name = models.CharField(max_length=200, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["section", "monitor"], name="status_item_once"),
        ]
        indexes = [models.Index(fields=["monitor"], name="status_item_monitor")]

    def __str__(self) -> str:
        return self.display_name or str(self.monitor_id)

    @property
    def public_name(self) -> str:
        return self.display_name or self.monitor.name


class UpdateStatus(models.TextChoices):
    INVESTIGATING = "investigating", "Investigating"
    IDENTIFIED = "identified", "Identified"
    MONITORING = "monitoring", "Monitoring"
    RESOLVED = "resolved", "Resolved"


class IncidentUpdate(TenantModel):
    """A message a member publishes about an incident. The incident's own state machine is
    untouched: the page shows the latest update's status (see selectors.public_state)."""

    incident = models.ForeignKey(
        "incidents.Incident", on_delete=models.CASCADE, related_name="status_updates"
    )
    status = models.CharField(max_length=16, choices=UpdateStatus.choices)
    message = models.TextField()
    author = recorded_user()
    # The API key that wrote it (a snapshot, see apps.core.actors).
    author_key = models.JSONField(null=True, blank=True, editable=False)
    posted_at = models.DateTimeField()
    notify = models.BooleanField(default=True)
    # Set once by the fan-out's compare-and-set claim, so a redelivered task mails no one twice.
    notified_at = models.DateTimeField(null=True, blank=True)
    recipients = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-posted_at"]
        indexes = [models.Index(fields=["incident", "posted_at"], name="status_update_time")]

    def __str__(self) -> str:
        return f"{self.status}: {self.message[:40]}"


class Postmortem(TenantModel):
    incident = models.OneToOneField(
        "incidents.Incident", on_delete=models.CASCADE, related_name="postmortem"
    )
    body = models.TextField()
    published = models.BooleanField(default=True)
    author = recorded_user()
    # The API key that wrote it (a snapshot, see apps.core.actors).
    author_key = models.JSONField(null=True, blank=True, editable=False)

    def __str__(self) -> str:
        return f"Postmortem of {self.incident_id}"


class Subscriber(TenantModel):
    """An email address following a page. Confirmed by a signed link (double opt-in); each
    update email carries a signed unsubscribe link."""

    page = models.ForeignKey(StatusPage, on_delete=models.CASCADE, related_name="subscribers")
    email = models.EmailField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    # Where the visitor subscribed (scheme + host), for links when HEALTHORCH_PUBLIC_URL is unset.
    link_base = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["page", "email"], name="subscriber_once_per_page"),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def active(self) -> bool:
        return self.confirmed_at is not None and self.unsubscribed_at is None


class Badge(TenantModel):
    """The public handle of a monitor's badges. A separate random token, not the monitor's id:
    the id appears in API answers, logs and console URLs, a badge must be opt-in per monitor,
    and a leaked badge URL can be revoked (delete the badge, make a new one) without touching
    the monitor."""

    monitor = models.OneToOneField("monitors.Monitor", on_delete=models.CASCADE, related_name="+")
    token = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return str(self.token)
