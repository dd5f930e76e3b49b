"""Incidents and their timelines.

An Incident is what a human acknowledges and resolves; every change to it is an IncidentEvent
row written in the same transaction, so the timeline, the notifications
(apps.alerts reads the events) and the reports all derive from rows.
See docs/decisions/0009-history-is-rows.md.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.core.models import TenantModel, TenantQuerySet, denormalised_organization, recorded_user


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
    acknowledged_by = recorded_user()
    # The API key that did it, when no user did: a snapshot {"id", "name", "prefix"} that
    # outlives the key (apps.core.actors). Null with a null user: the system.
    acknowledged_by_key = models.JSONField(null=True, blank=True, editable=False)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = recorded_user()
    resolved_by_key = models.JSONField(null=True, blank=True, editable=False)
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
    organization = denormalised_organization()
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    at = models.DateTimeField()
    # Who did it (acknowledge, note, manual resolve): a user, or an API key (a snapshot, see
    # apps.core.actors); both null for the system.
    actor = recorded_user()
    actor_key = models.JSONField(null=True, blank=True, editable=False)
    note = models.TextField(blank=True)
    count = models.PositiveIntegerField(default=1)
    # Kind-specific facts: {"channel": ..., "outcome": ...}, {"step": 2}, {"auto": true}...
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["incident", "at"], name="incident_event_time")]

    def __str__(self) -> str:
        return f"{self.kind} at {self.at:%Y-%m-%d %H:%M:%S}"


# --- Alert rules ------------------------------------------------------------------------------


class RuleKind(models.TextChoices):
    SERVICE_DOWN = "service_down", "Service down"
    CRITICAL_SERVICE_DOWN = "critical_service_down", "Critical service down"
    CONSECUTIVE_FAILURES = "consecutive_failures", "Consecutive failures"
    HIGH_RESPONSE_TIME = "high_response_time", "High response time"
    LOW_UPTIME = "low_uptime", "Low uptime"
    CERTIFICATE_EXPIRY = "certificate_expiry", "Certificate expiry"
    SERVICE_RECOVERY = "service_recovery", "Service recovery"
    FLAPPING = "flapping", "Flapping"
    SLO_BURN = "slo_burn", "Error budget burn"
    ERROR_SIGNATURE = "error_signature", "Error signature"


CUSTOM_RULE = "custom"


class AlertRule(TenantModel):
    """One organization's setting for one rule kind. Absent rows mean the defaults
    (apps.incidents.rules.DEFAULTS); a row exists once the organization lists or changes them."""

    kind = models.CharField(max_length=40, choices=RuleKind.choices)
    enabled = models.BooleanField(default=True)
    # Meaning per kind: failures in a row, a response-time factor, an uptime percentage,
    # days before expiry, status changes per window. Null where the kind takes none.
    threshold = models.FloatField(null=True, blank=True)
    window_seconds = models.PositiveIntegerField(null=True, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices)

    class Meta:
        ordering = ["kind"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "kind"], name="alert_rule_per_org"),
        ]

    def __str__(self) -> str:
        return self.kind


# --- Dependencies -----------------------------------------------------------------------------


class MonitorDependency(TenantModel):
    """`monitor` depends on `depends_on`: while the parent is down (or in maintenance), the
    child's new incidents are recorded as suppressed instead of notified."""

    monitor = models.ForeignKey(
        "monitors.Monitor", on_delete=models.CASCADE, related_name="dependencies"
    )
    depends_on = models.ForeignKey(
        "monitors.Monitor", on_delete=models.CASCADE, related_name="dependents"
    )

    class Meta:
        ordering = ["created_at"]
        verbose_name_plural = "monitor dependencies"
        constraints = [
            models.UniqueConstraint(fields=["monitor", "depends_on"], name="dependency_unique"),
            models.CheckConstraint(
                condition=~Q(monitor=models.F("depends_on")), name="dependency_not_self"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.monitor_id} -> {self.depends_on_id}"


# --- Status changes (the flip log) ------------------------------------------------------------


class StatusChange(models.Model):
    """Every monitor status change, written in the transaction that changed the status.

    Flapping is counted from these rows; the timeline of a monitor is these rows.
    """

    id = models.BigAutoField(primary_key=True)
    monitor = models.ForeignKey(
        "monitors.Monitor", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    organization = denormalised_organization()
    old = models.CharField(max_length=16)
    new = models.CharField(max_length=16)
    at = models.DateTimeField()
    # The check result that caused it (null for heartbeats, windows and sweeps).
    result_id = models.BigIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["monitor", "at"], name="status_change_monitor_time")]

    def __str__(self) -> str:
        return f"{self.old} -> {self.new} at {self.at:%Y-%m-%d %H:%M:%S}"


# --- Maintenance windows and silences ---------------------------------------------------------


class WindowKind(models.TextChoices):
    # Monitors show `maintenance`, open no incidents, notify no one.
    MAINTENANCE = "maintenance", "Maintenance"
    # Monitors keep their real status; incidents are recorded but nobody is notified.
    SILENCE = "silence", "Silence"


class Recurrence(models.TextChoices):
    ONCE = "once", "One-off"
    CRON = "cron", "Cron expression"
    WEEKLY = "weekly", "Weekly"


class MaintenanceWindow(TenantModel):
    name = models.CharField(max_length=200)
    kind = models.CharField(
        max_length=12, choices=WindowKind.choices, default=WindowKind.MAINTENANCE
    )
    recurrence = models.CharField(max_length=8, choices=Recurrence.choices, default=Recurrence.ONCE)
    # One-off: the window itself. Recurring: the period in which the recurrence applies
    # (either end open).
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    # Recurring: each occurrence starts at a cron fire, or at `start_time` on `weekdays`
    # (0 = Monday), in `timezone`, and lasts `duration_minutes`.
    cron = models.CharField(max_length=100, blank=True)
    weekdays = models.JSONField(default=list, blank=True)
    start_time = models.TimeField(null=True, blank=True)
    duration_minutes = models.PositiveIntegerField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    # What it covers: the whole organization, or these monitors and monitors with these tags.
    all_monitors = models.BooleanField(default=False)
    monitors = models.ManyToManyField("monitors.Monitor", blank=True, related_name="+")
    tags = models.JSONField(default=list, blank=True)
    # A silence made by "snooze" on an incident.
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = recorded_user()
    # The API key that made it (a snapshot, see apps.core.actors).
    created_by_key = models.JSONField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "ends_at"], name="window_org_end")]

    def __str__(self) -> str:
        return self.name
