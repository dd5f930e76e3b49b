"""Per-organization report settings and the members who opted out of scheduled reports.

The figures themselves are never stored here: they are computed from the rollups
(apps.monitors.models.ResultRollup, ErrorRollup) whenever asked.
"""

from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from apps.core.models import TenantModel


class Schedule(models.TextChoices):
    MONTHLY = "monthly", "Monthly"
    WEEKLY = "weekly", "Weekly"
    OFF = "off", "Off"


def validate_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"Unknown time zone {value!r}.") from exc


class ReportSettings(TenantModel):
    """How an organization's SLA is counted and when its report is mailed. No row means the
    defaults below (apps.reports.selectors.report_settings_for)."""

    organization = models.OneToOneField(
        "tenants.Organization", on_delete=models.CASCADE, related_name="report_settings"
    )
    # Calendar months, quarters, weeks and violation days start at local midnight here.
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    exclude_maintenance = models.BooleanField(
        default=True, help_text="Leave results taken during maintenance windows out of the SLA."
    )
    degraded_counts_as_up = models.BooleanField(
        default=True, help_text="A degraded (slow, soft-failing) result counts as available."
    )
    schedule = models.CharField(max_length=8, choices=Schedule.choices, default=Schedule.MONTHLY)
    # The start of the last period whose report went out: the claim that keeps two beat runs
    # (or two workers) from mailing the same report twice.
    last_sent_period = models.DateField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "report settings"
        verbose_name_plural = "report settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(schedule__in=Schedule.values), name="report_schedule_valid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization_id}: {self.schedule}, {self.timezone}"


class ReportOptOut(TenantModel):
    """This member does not want the organization's scheduled SLA report by email."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="report_opt_outs"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "user"], name="report_opt_out_once")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} opted out"
