"""The console for billing: each organization's subscription, comps, and a resync button."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils import timezone

from apps.billing import services
from apps.billing.models import BillingAccount, PlanComp
from apps.core.admin import OperatorOnlyAdmin, ReadOnlyAdminMixin
from apps.core.errors import ServiceError
from apps.tenants.gate.admin import TenantScopedAdmin


@admin.register(BillingAccount)
class BillingAccountAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    """Read-only for everyone (Stripe is the source); operators may resync from Stripe."""

    list_display = [
        "organization",
        "current_plan",
        "status",
        "paid_plan",
        "current_period_end",
        "cancel_at_period_end",
        "grace_until",
        "synced_at",
        "synced_by",
    ]
    list_filter = ["status", "cancel_at_period_end", "paid_plan"]
    search_fields = ["organization__slug", "organization__name", "stripe_customer_id"]
    list_select_related = ["organization"]
    readonly_fields = [f.name for f in BillingAccount._meta.fields]
    actions = ["resync_from_stripe"]

    @admin.display(description="plan now", ordering="organization__plan")
    def current_plan(self, obj: BillingAccount) -> str:
        return obj.organization.plan_id

    @admin.action(description="Resync from Stripe", permissions=["resync"])
    def resync_from_stripe(self, request: HttpRequest, queryset):
        accounts = list(queryset.select_related("organization"))
        page = self.confirm(
            request,
            accounts,
            action="resync_from_stripe",
            question=f"Re-read {len(accounts)} subscription(s) from Stripe and apply the plans?",
        )
        if page:
            return page
        for account in accounts:
            try:
                change = services.organization_resync(org=account.organization, actor=request.user)
            except ServiceError as exc:
                self.message_user(
                    request, f"{account.organization}: {exc.detail}", level=messages.ERROR
                )
                continue
            what = f"{change.from_plan} -> {change.to_plan}" if change else "plan unchanged"
            self.message_user(request, f"{account.organization}: resynced, {what}.")
        return None

    def has_resync_permission(self, request: HttpRequest) -> bool:
        return self._is_operator(request)


class PlanCompForm(forms.ModelForm):
    class Meta:
        model = PlanComp
        fields = ["organization", "plan", "reason", "expires_at"]

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why this organization gets a comp.")
        return reason

    def clean_expires_at(self):
        expires_at = self.cleaned_data["expires_at"]
        if expires_at <= timezone.now():
            raise forms.ValidationError("The comp must expire in the future.")
        return expires_at


@admin.register(PlanComp)
class PlanCompAdmin(OperatorOnlyAdmin):
    form = PlanCompForm
    list_display = ["organization", "plan", "reason", "expires_at", "ended_at", "created_by"]
    list_filter = ["plan"]
    search_fields = ["organization__slug", "organization__name", "reason"]
    list_select_related = ["organization", "created_by"]
    autocomplete_fields = ["organization"]
    actions = ["end_now"]

    def get_readonly_fields(self, request: HttpRequest, obj: PlanComp | None = None):
        if obj is not None:  # history: a comp is ended, never edited
            return ["organization", "plan", "reason", "expires_at", "ended_at", "created_by"]
        return []

    def save_model(self, request: HttpRequest, obj: PlanComp, form, change: bool) -> None:
        if change:
            return
        comp = services.comp_grant(
            org=obj.organization,
            plan_code=obj.plan_id,
            reason=obj.reason,
            expires_at=obj.expires_at,
            actor=request.user,
        )
        obj.pk = comp.pk
        obj.created_at = comp.created_at

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="End the comp now", permissions=["operate"])
    def end_now(self, request: HttpRequest, queryset):
        comps = list(queryset.filter(ended_at__isnull=True).select_related("organization"))
        return self.confirm_each(
            request,
            comps,
            action="end_now",
            question=f"End {len(comps)} comp(s) now? Each organization returns to its paid plan.",
            act=lambda comp: services.comp_end(comp=comp, actor=request.user),
            done="{count} comp(s) ended.",
            nothing="None of the selected comps is running.",
            level=messages.INFO,
        )
        return None
