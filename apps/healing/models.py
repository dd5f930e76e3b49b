"""Healing: policies (what to do for which monitors) and attempts (what was decided and done).

Every decision is a HealingAttempt row, acted on or not: a suggestion
waiting for a person, a skip with its reason, or an executed action with its outcome,
duration and verification. Each step also appears on the incident's timeline as a `healing`
IncidentEvent. See docs/decisions/0009-history-is-rows.md.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.core import crypto
from apps.core.models import TenantModel, recorded_user
from apps.incidents.models import Severity

DEFAULT_RULES = ["timeout", "http_5xx", "connection"]


def _default_rules() -> list[str]:
    return list(DEFAULT_RULES)


def _default_severities() -> list[str]:
    return [Severity.WARNING, Severity.ERROR, Severity.CRITICAL]


class HealingPolicy(TenantModel):
    """Which action heals which monitors: one monitor, or every monitor with `tag`.

    `rules` are the engine's conditions this policy acts on (apps.healing.engine.RULES);
    `auto` runs the action without a person (the `auto_orchestration` feature), otherwise the
    decision is recorded as a suggestion to run from the incident. `use_anomaly` lets the
    anomaly model (the `ml_healing` feature) act before or beyond the hard rules.
    """

    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    monitor = models.ForeignKey(
        "monitors.Monitor",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="healing_policies",
    )
    tag = models.CharField(max_length=64, blank=True)
    action_kind = models.CharField(max_length=32)
    # The public half of the action's config; the secret half (webhook secret, auth headers)
    # is Fernet-encrypted in `action_secret` and never returned after creation.
    action_config = models.JSONField(default=dict, blank=True)
    action_secret = models.TextField(blank=True, default="")
    rules = models.JSONField(default=_default_rules)
    severities = models.JSONField(default=_default_severities)
    max_attempts = models.PositiveSmallIntegerField(default=3)
    cooldown_minutes = models.PositiveIntegerField(default=5)
    verify_after_seconds = models.PositiveIntegerField(default=60)
    escalate_on_failure = models.BooleanField(default=True)
    auto = models.BooleanField(default=False)
    use_anomaly = models.BooleanField(default=False)
    # Lower first when several policies cover a monitor; the monitor's own policy wins ties.
    priority = models.SmallIntegerField(default=100)

    class Meta:
        ordering = ["priority", "created_at", "id"]
        verbose_name_plural = "healing policies"
        constraints = [
            models.CheckConstraint(
                condition=(Q(monitor__isnull=False) & Q(tag=""))
                | (Q(monitor__isnull=True) & ~Q(tag="")),
                name="healing_policy_monitor_xor_tag",
            ),
            models.CheckConstraint(
                condition=Q(max_attempts__gte=1), name="healing_policy_attempts_positive"
            ),
        ]
        indexes = [models.Index(fields=["organization", "enabled"], name="healing_policy_org")]

    def __str__(self) -> str:
        return self.name


crypto.stored_encrypted(HealingPolicy, "action_secret")


class Decision(models.TextChoices):
    EXECUTE = "execute", "Execute the action"
    SUGGEST = "suggest", "Suggest to a person"
    NOTIFY_ONLY = "notify_only", "Notify only, never act"
    SKIP = "skip", "Do nothing"


class AttemptStatus(models.TextChoices):
    SUGGESTED = "suggested", "Suggested"  # waiting for a person to run it
    SKIPPED = "skipped", "Skipped"  # decided not to act (reason in `explanation`)
    PENDING = "pending", "Pending"  # queued for a worker
    RUNNING = "running", "Running"  # claimed by a worker
    SUCCEEDED = "succeeded", "Action succeeded"
    FAILED = "failed", "Action failed"


class Verification(models.TextChoices):
    NONE = "none", "Not applicable"
    PENDING = "pending", "Waiting"
    CHECKING = "checking", "Checking"
    RECOVERED = "recovered", "Recovered"
    NOT_RECOVERED = "not_recovered", "Not recovered"


# Statuses of an attempt that did (or will) call the action, all but a suggestion and a skip:
# these count toward max_attempts and the cooldown.
ACTED = [s for s in AttemptStatus if s not in (AttemptStatus.SUGGESTED, AttemptStatus.SKIPPED)]


class HealingAttempt(TenantModel):
    incident = models.ForeignKey(
        "incidents.Incident",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="healing_attempts",
    )
    monitor = models.ForeignKey(
        "monitors.Monitor",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="healing_attempts",
    )
    policy = models.ForeignKey(
        HealingPolicy, null=True, blank=True, on_delete=models.SET_NULL, related_name="attempts"
    )
    decision = models.CharField(max_length=12, choices=Decision.choices)
    # "rules" or "anomaly": which path of the engine decided.
    path = models.CharField(max_length=8, default="rules")
    # The engine's condition that matched ("http_5xx", "latency_step"...), "" if none.
    condition = models.CharField(max_length=40, blank=True)
    # What the action is (the policy's kind, or a suggestion like "scale_up").
    action_kind = models.CharField(max_length=32, blank=True)
    explanation = models.TextField()
    # What the engine looked at: the failing result, the anomaly verdict, counts.
    inputs = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=AttemptStatus.choices)
    automatic = models.BooleanField(default=False)
    requested_by = recorded_user()
    # The API key that asked (a snapshot, see apps.core.actors); both null: the engine.
    requested_by_key = models.JSONField(null=True, blank=True, editable=False)
    # The action's outcome: status code, error, the details the plugin returned.
    outcome = models.JSONField(default=dict, blank=True)
    error = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    verification = models.CharField(
        max_length=14, choices=Verification.choices, default=Verification.NONE
    )
    verify_due_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    escalated = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "created_at"], name="healing_attempt_org_time"),
            models.Index(fields=["incident", "status"], name="healing_attempt_incident"),
            # The cooldown's question: the monitor's last executed attempt.
            models.Index(fields=["monitor", "created_at"], name="healing_attempt_monitor_time"),
            # The verification sweep's only access path.
            models.Index(
                fields=["verify_due_at"],
                condition=Q(verification="pending"),
                name="healing_attempt_verify_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.decision} {self.action_kind} ({self.status})"
