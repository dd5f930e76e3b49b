"""Channels, escalation policies and the notification outbox.

The outbox is the truth: one Notification row per (incident event, channel),
written in the transaction that wrote the event, under a unique idempotency key; a Celery task
only nudges it. Every delivery attempt is a NotificationAttempt row with its error.
See docs/decisions/0009-history-is-rows.md.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.core import crypto
from apps.core.models import TenantModel
from apps.incidents.models import Severity


class ChannelKind(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Signed webhook"
    APPRISE = "apprise", "Apprise URL (Slack, Teams, Telegram, PagerDuty...)"


# The plan feature each channel kind needs (apps/plans/models.py Feature).
KIND_FEATURES = {
    ChannelKind.EMAIL: "email_channel",
    ChannelKind.WEBHOOK: "webhook_channel",
    ChannelKind.APPRISE: "integrations",
}


def _all_severities() -> list[str]:
    return list(Severity.values)


class Channel(TenantModel):
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    name = models.CharField(max_length=200)
    # The public half of the transport config; the secret half (webhook secret, Apprise URL)
    # is a Fernet-encrypted JSON object in `secret` and never leaves the server after creation.
    config = models.JSONField(default=dict, blank=True)
    secret = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    # Set when a permanent delivery error disabled the channel (re-enabling clears it).
    disabled_reason = models.CharField(max_length=500, blank=True)
    notify_on_resolved = models.BooleanField(default=True)
    severities = models.JSONField(default=_all_severities)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["organization", "created_at"], name="channel_org_created")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def takes(self, severity: str) -> bool:
        return self.enabled and severity in self.severities


crypto.stored_encrypted(Channel, "secret")


class EscalationPolicy(TenantModel):
    """Ordered steps for the incidents whose severity is in `severities`.

    Step 1's delay counts from the incident's opening, each later step's from the previous
    step. After the last step the whole policy runs again `repeat` more times.
    """

    name = models.CharField(max_length=200)
    severities = models.JSONField(default=list)
    repeat = models.PositiveSmallIntegerField(default=0)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name_plural = "escalation policies"

    def __str__(self) -> str:
        return self.name


class EscalationStep(models.Model):
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    delay_minutes = models.PositiveIntegerField(default=0)
    channels = models.ManyToManyField(Channel, related_name="escalation_steps", blank=True)

    class Meta:
        ordering = ["policy", "position"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "position"], name="escalation_step_position")
        ]

    def __str__(self) -> str:
        return f"{self.policy} step {self.position + 1}"


class NotificationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed, will retry"
    DEAD = "dead", "Dead (gave up)"
    GROUPED = "grouped", "Sent inside a grouped notification"
    SUPPRESSED = "suppressed", "Suppressed"
    SUPPRESSED_QUOTA = "suppressed_quota", "Suppressed (monthly quota)"


# Rows a delivery task may claim.
CLAIMABLE = [NotificationStatus.PENDING, NotificationStatus.FAILED]


class NotificationKind(models.TextChoices):
    OPENED = "opened", "Opened"
    ESCALATED = "escalated", "Escalated"
    RESOLVED = "resolved", "Resolved"
    FLAPPING = "flapping", "Flapping"
    TEST = "test", "Test message"


class Notification(TenantModel):
    # Every index costs each outbox insert (a burst of 1,000 incidents writes thousands of
    # rows inside the fold's transactions), so the foreign keys below lean on the composite
    # indexes in Meta instead of one index each.
    organization = models.ForeignKey(
        "tenants.Organization",
        on_delete=models.CASCADE,
        related_name="notifications",
        db_index=False,
    )
    channel = models.ForeignKey(
        Channel, on_delete=models.CASCADE, related_name="notifications", db_index=False
    )
    # Null for test messages; grouped notifications point at the first member's incident.
    incident = models.ForeignKey(
        "incidents.Incident",
        on_delete=models.CASCADE,
        related_name="notifications",
        null=True,
        blank=True,
        db_index=False,
    )
    event = models.ForeignKey(
        "incidents.IncidentEvent",
        on_delete=models.SET_NULL,
        related_name="+",
        null=True,
        blank=True,
    )
    kind = models.CharField(max_length=16, choices=NotificationKind.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    # "<event id>:<channel id>" (or "group:..." / "test:..."): a unique index, so writing the
    # same notice twice (a listener run twice, a retried transaction) fails instead of sending
    # twice.
    idempotency_key = models.CharField(max_length=200, unique=True)
    status = models.CharField(
        max_length=20, choices=NotificationStatus.choices, default=NotificationStatus.PENDING
    )
    # Attempts ever made; the row is `dead` once attempts reach max_attempts (an operator's
    # retry raises max_attempts by another full budget, so attempt numbers stay unique).
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=6)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Opened notices wait until then to be coalesced with others of the org and channel.
    hold_until = models.DateTimeField(null=True, blank=True)
    # A grouped notification's members point at it (their status is then `grouped`).
    group = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="members",
        db_index=False,  # a partial index below: most rows have no group
    )
    is_group = models.BooleanField(default=False)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # The rendered message facts at write time (title, body, monitor...), so a retry days
    # later sends what was true then.
    payload = models.JSONField(default=dict, blank=True)
    # Counted against the monthly cap (once, at the first attempt).
    metered = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "created_at"], name="notification_org_created"),
            models.Index(fields=["incident", "channel"], name="notification_incident_channel"),
            # Grouping's "anything opened on this channel within the window?"
            models.Index(fields=["channel", "created_at"], name="notification_channel_created"),
            # The sweep's and the grouping flush's access path: unfinished rows only.
            models.Index(
                fields=["status", "next_attempt_at"],
                condition=Q(status__in=["pending", "sending", "failed"]),
                name="notification_unfinished",
            ),
            models.Index(
                fields=["group"], condition=Q(group__isnull=False), name="notification_group"
            ),
            models.Index(
                fields=["channel", "hold_until"],
                condition=Q(hold_until__isnull=False, status="pending"),
                name="notification_held",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} -> {self.channel_id} ({self.status})"


class NotificationAttempt(models.Model):
    id = models.BigAutoField(primary_key=True)
    notification = models.ForeignKey(
        Notification, on_delete=models.CASCADE, related_name="attempt_rows"
    )
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    ok = models.BooleanField(default=False)
    permanent = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["notification", "number"]
        constraints = [
            models.UniqueConstraint(fields=["notification", "number"], name="attempt_number")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} ({'ok' if self.ok else 'error'})"
