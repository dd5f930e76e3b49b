"""Plans, per-organization limit overrides, usage counters and the plan-change history."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from apps.core.models import TenantModel, TenantQuerySet, TimeStampedModel, recorded_user


class Feature(models.TextChoices):
    METRICS_INGESTION = "metrics_ingestion", "Metrics ingestion"
    HEALTH_CHECKS = "health_checks", "Health checks (monitors)"
    EMAIL_CHANNEL = "email_channel", "Email alerts"
    WEBHOOK_CHANNEL = "webhook_channel", "Webhook alerts"
    INTEGRATIONS = "integrations", "Integrations (Slack, PagerDuty, ...)"
    ESCALATION_POLICIES = "escalation_policies", "Escalation policies"
    AUTO_ORCHESTRATION = "auto_orchestration", "Automatic healing"
    STATUS_PAGES = "status_pages", "Status pages"
    SLA_REPORTS = "sla_reports", "SLA reports"
    ML_HEALING = "ml_healing", "Anomaly-based healing"
    AUDIT_LOGS = "audit_logs", "Audit logs"
    MFA_ENFORCEMENT = "mfa_enforcement", "Require two-factor sign-in for every member"
    SSO = "sso", "Single sign-on (OpenID Connect)"


class Limit(models.TextChoices):
    """Limits a plan sets. Every one of them may be overridden for one organization."""

    MONITORS = "monitors", "Active monitors"
    MIN_INTERVAL_SECONDS = "min_interval_seconds", "Minimum check interval (s)"
    MEMBERS = "members", "Members"
    RETENTION_DAYS = "retention_days", "Result retention (days)"
    NOTIFICATIONS_PER_MONTH = "notifications_per_month", "Notifications per month"
    API_REQUESTS_PER_MINUTE = "api_requests_per_minute", "API requests per minute per key"
    METRIC_SAMPLES_PER_MONTH = "metric_samples_per_month", "Metric samples ingested per month"
    LOG_LINES_PER_MONTH = "log_lines_per_month", "Log lines ingested per month"
    LOG_RETENTION_DAYS = "log_retention_days", "Log retention (days)"


class Plan(TimeStampedModel):
    """A price tier. Null limits mean unlimited. Edited by operators in the admin."""

    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=64)
    monthly_price_cents = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=3, default="usd")
    stripe_price_id = models.CharField(max_length=255, blank=True)
    features = models.JSONField(default=list, blank=True)
    sort_order = models.PositiveSmallIntegerField(default=0)
    is_public = models.BooleanField(default=True)

    monitors = models.PositiveIntegerField(null=True, blank=True)
    min_interval_seconds = models.PositiveIntegerField(default=300)
    members = models.PositiveIntegerField(null=True, blank=True)
    retention_days = models.PositiveIntegerField(null=True, blank=True)
    notifications_per_month = models.PositiveIntegerField(null=True, blank=True)
    api_requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    metric_samples_per_month = models.PositiveBigIntegerField(null=True, blank=True)
    log_lines_per_month = models.PositiveBigIntegerField(null=True, blank=True)
    log_retention_days = models.PositiveIntegerField(null=True, blank=True)

    sla_availability_pct = models.DecimalField(max_digits=6, decimal_places=3, default=99)
    sla_response_ms = models.PositiveIntegerField(default=1000)
    sla_error_pct = models.DecimalField(max_digits=5, decimal_places=2, default=2)

    class Meta:
        ordering = ["sort_order", "monthly_price_cents"]

    def __str__(self) -> str:
        return self.name

    def limit(self, name: str) -> int | None:
        return getattr(self, Limit(name).value)


class LimitOverrideQuerySet(TenantQuerySet):
    def active(self, now) -> LimitOverrideQuerySet:
        return self.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


class LimitOverride(TenantModel):
    """An operator's exception to one organization's plan limit, with a reason and expiry."""

    limit = models.CharField(max_length=32, choices=Limit.choices)
    value = models.PositiveIntegerField(null=True, blank=True, help_text="Empty = unlimited.")
    reason = models.CharField(max_length=255)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_by = recorded_user()

    objects = LimitOverrideQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "limit"], name="override_one_per_limit")
        ]

    def __str__(self) -> str:
        value = "unlimited" if self.value is None else self.value
        return f"{self.limit} = {value}"


class UsageMetric(models.TextChoices):
    CHECKS_EXECUTED = "checks_executed", "Checks executed"
    METRIC_SAMPLES = "metric_samples", "Metric samples ingested"
    NOTIFICATIONS_SENT = "notifications_sent", "Notifications sent"
    LOG_LINES = "log_lines", "Log lines ingested"
    API_REQUESTS = "api_requests", "API requests"


class UsageCounter(models.Model):
    """One number per organization, billing period and metric, only ever added to atomically."""

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="usage_counters"
    )
    period_start = models.DateField()
    metric = models.CharField(max_length=32, choices=UsageMetric.choices)
    value = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-period_start", "metric"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "period_start", "metric"], name="usage_one_row_per_metric"
            )
        ]

    def __str__(self) -> str:
        return f"{self.metric}={self.value} ({self.period_start})"


class PlanChange(models.Model):
    """Every change of an organization's plan: from, to, who or which event, why, when."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="plan_changes"
    )
    from_plan = models.CharField(max_length=32)
    to_plan = models.CharField(max_length=32)
    actor = recorded_user()
    source = models.CharField(max_length=64, help_text="admin, api, stripe event id, command...")
    reason = models.CharField(max_length=255, blank=True)
    effects = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.from_plan} -> {self.to_plan}"
