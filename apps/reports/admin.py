"""Report settings in the console, and the operators' platform-wide SLA page."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from apps.reports.models import ReportOptOut, ReportSettings
from apps.reports.selectors import platform_sla_overview
from apps.tenants.gate.admin import TenantScopedAdmin
from apps.tenants.models import Role


@admin.register(ReportSettings)
class ReportSettingsAdmin(TenantScopedAdmin):
    list_display = [
        "organization",
        "schedule",
        "timezone",
        "exclude_maintenance",
        "degraded_counts_as_up",
        "last_sent_period",
    ]
    list_filter = ["schedule", "exclude_maintenance", "degraded_counts_as_up"]
    readonly_fields = ["last_sent_period"]
    write_roles = {Role.OWNER, Role.ADMIN}

    def get_urls(self) -> list:
        return [
            path(
                "platform-sla/",
                self.admin_site.admin_view(self.platform_view),
                name="reports_platform_sla",
            ),
            *super().get_urls(),
        ]

    def platform_view(self, request: HttpRequest) -> HttpResponse:
        # Every organization's figures: operators only. Anyone else gets "not found", as an
        # outsider does for another tenant's page.
        if not (request.user.is_active and request.user.is_superuser):
            raise Http404
        try:
            days = max(1, min(int(request.GET.get("days", 30)), 90))
        except ValueError:
            days = 30
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": f"Platform SLA, last {days} days",
            "overview": platform_sla_overview(days=days),
        }
        return TemplateResponse(request, "admin/reports/platform_sla.html", context)


@admin.register(ReportOptOut)
class ReportOptOutAdmin(TenantScopedAdmin):
    list_display = ["organization", "user", "created_at"]
