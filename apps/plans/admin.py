from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.core.admin import OperatorOnlyAdmin, ReadOnlyAdminMixin, TenantScopedAdmin
from apps.plans import services
from apps.plans.models import Limit, LimitOverride, Plan, PlanChange, UsageCounter


@admin.register(Plan)
class PlanAdmin(OperatorOnlyAdmin):
    # The limit columns are exactly the Limit choices, so a new limit shows up here by itself.
    list_display = ["code", "name", "monthly_price_cents", *Limit.values, "stripe_price_id"]
    list_editable = ["stripe_price_id"]
    search_fields = ["code", "name"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "code",
                    "name",
                    "monthly_price_cents",
                    "currency",
                    "stripe_price_id",
                    "sort_order",
                    "is_public",
                    "features",
                ]
            },
        ),
        (
            "Limits (empty = unlimited)",
            {"fields": list(Limit.values)},
        ),
        ("SLA targets", {"fields": ["sla_availability_pct", "sla_response_ms", "sla_error_pct"]}),
    ]

    def save_model(self, request: HttpRequest, obj: Plan, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        services.plan_saved()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # organizations point at plans; retire one with is_public instead


@admin.register(LimitOverride)
class LimitOverrideAdmin(OperatorOnlyAdmin):
    list_display = ["organization", "limit", "value", "reason", "expires_at", "created_by"]
    list_filter = ["limit"]
    search_fields = ["organization__slug", "organization__name", "reason"]
    list_select_related = ["organization", "created_by"]
    autocomplete_fields = ["organization"]
    readonly_fields = ["created_by", "created_at"]

    def save_model(self, request: HttpRequest, obj: LimitOverride, form, change: bool) -> None:
        saved = services.limit_override_set(
            org=obj.organization,
            limit=obj.limit,
            value=obj.value,
            reason=obj.reason,
            expires_at=obj.expires_at,
            actor=request.user,
        )
        obj.pk = saved.pk
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: LimitOverride) -> None:
        services.limit_override_remove(override=obj)


@admin.register(UsageCounter)
class UsageCounterAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ["organization", "period_start", "metric", "value", "updated_at"]
    list_filter = ["metric", "period_start"]
    search_fields = ["organization__slug"]
    list_select_related = ["organization"]


@admin.register(PlanChange)
class PlanChangeAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ["organization", "from_plan", "to_plan", "source", "actor", "created_at"]
    list_filter = ["to_plan", "source"]
    search_fields = ["organization__slug", "reason", "source"]
    list_select_related = ["organization", "actor"]
    readonly_fields = [
        "organization",
        "from_plan",
        "to_plan",
        "actor",
        "source",
        "reason",
        "effects",
        "created_at",
    ]
