"""Incidents and their timelines.

An Incident is what a human acknowledges and resolves; every change to it is an IncidentEvent
row written in the same transaction (STYLE.md rule 5), so the timeline, the notifications
(apps.alerts reads the events) and the reports all derive from rows.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import TenantModel


class Severity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
    CRITICAL = "critical", "Critical"


# Ordered from least to most urgent: compare with SEVERITY_RANK[a] < SEVERITY_RANK[b].
SEVERITY_RANK = {s: i for i, s in enumerate(Severity.values)}


class IncidentStatus(models.TextChoices):
    TRIGGERED = "triggered", "Triggered"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


OPEN_STATUSES = [IncidentStatus.TRIGGERED, IncidentStatus.ACKNOWLEDGED]


class Incident(TenantModel):
    # Null for a custom incident raised through the API.
    monitor = models.ForeignKey(
        "monitors.Monitor",
        on_delete=models.CASCADE,
        related_name="incidents",
        null=True,
        blank=True,
    )
    # The alert rule that opened it (e.g. "service_down"); "custom" for an API-raised incident.
    rule = models.CharField(max_length=40)
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    status = models.CharField(
        max_length=16, choices=IncidentStatus.choices, default=IncidentStatus.TRIGGERED
    )
    # Why it opened: the rule's verdict and the failing result (ids, error, status code...).
    cause = models.JSONField(default=dict, blank=True)
    occurrences = models.PositiveIntegerField(default=1)
    # Recorded but not notified: a parent dependency was down, or a silence matched.
    suppressed = models.BooleanField(default=False)
    suppressed_reason = models.CharField(max_length=200, blank=True)

    opened_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Escalation bookkeeping (apps.alerts owns the policy walk): the step reached, how many times
    # the policy repeated, and when the next step is due (null: nothing left to do).
    escalation_step = models.PositiveSmallIntegerField(default=0)
    escalation_repeats = models.PositiveSmallIntegerField(default=0)
    next_escalation_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        constraints = [
            # Grouping's guarantee: one open incident per (monitor, rule). A racing second
            # opener hits this and folds into the existing row instead.
            models.UniqueConstraint(
                fields=["monitor", "rule"],
                condition=Q(status__in=["triggered", "acknowledged"]),
                name="incident_one_open_per_monitor_rule",
            ),
        ]
        indexes = [
            models.Index(
                fields=["organization", "status", "opened_at"], name="incident_org_status"
            ),
            models.Index(fields=["monitor", "opened_at"], name="incident_monitor_time"),
            # The escalation sweep's only access path: open incidents with a step due.
            models.Index(
                fields=["next_escalation_at"],
                condition=Q(next_escalation_at__isnull=False),
                name="incident_escalation_due",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class EventKind(models.TextChoices):
    OPENED = "opened", "Opened"
    FAILED_AGAIN = "failed_again", "Failed again"
    NOTIFIED = "notified", "Notified"
    ESCALATED = "escalated", "Escalated"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    NOTE = "note", "Note added"
    HEALING = "healing", "Healing attempted"
    RESOLVED = "resolved", "Resolved"
    FLAPPING = "flapping", "Flapping"
    SUPPRESSED = "suppressed", "Suppressed"


class IncidentEvent(models.Model):
    """One line of an incident's timeline. Append-only, except that consecutive `failed_again`
    events collapse into one row whose `count` grows (a 1-minute monitor down for a day would
    otherwise write 1,440 rows that say the same thing)."""

    id = models.BigAutoField(primary_key=True)
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    # Denormalised for tenant scoping without a join.
    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    at = models.DateTimeField()
    # Who did it (acknowledge, note, manual resolve); null for the system.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True)
    count = models.PositiveIntegerField(default=1)
    # Kind-specific facts: {"channel": ..., "outcome": ...}, {"step": 2}, {"auto": true}...
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["incident", "at"], name="incident_event_time")]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at:%Y-%m-%d %H:%M:%S}"
