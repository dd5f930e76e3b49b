from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.core.actors import actor_label
from apps.core.admin import ReadOnlyAdminMixin
from apps.healing.models import HealingAttempt, HealingPolicy
from apps.healing.services import policies
from apps.tenants.gate.admin import TenantScopedAdmin


@admin.register(HealingPolicy)
class HealingPolicyAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ["name", "organization", "monitor", "tag", "action_kind", "auto", "enabled"]
    list_filter = ["action_kind", "auto", "enabled", "use_anomaly"]
    search_fields = ["name", "tag"]
    list_select_related = ["organization", "monitor"]
    # The action's config goes through the API (validated, secrets encrypted); here it is shown.
    readonly_fields = ["action_kind", "action_config", "created_at", "updated_at"]
    exclude = ["action_secret"]
    raw_id_fields = ["monitor"]

    # Shown, not edited here: writes go through the API's services, which check the plan's
    # gates (auto_orchestration, ml_healing), validate and encrypt the action's config, and
    # write the audit log. Deleting goes through the service too.
    delete_by = "base"

    def delete_model(self, request: HttpRequest, obj: HealingPolicy) -> None:
        policies.policy_delete(policy=obj)


@admin.register(HealingAttempt)
class HealingAttemptAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    """History: shown and filtered, never edited (attempts are facts)."""

    list_display = [
        "created_at",
        "organization",
        "decision",
        "action_kind",
        "status",
        "verification",
        "duration_ms",
        "escalated",
    ]
    list_filter = ["decision", "status", "verification", "path", "automatic"]
    search_fields = ["explanation", "error", "condition"]
    list_select_related = ["organization"]
    date_hierarchy = "created_at"
    exclude = ["requested_by"]  # shown as "requested by", with the API key when one asked

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # `requested_by` (a user) and `requested_by_key` read as one "requested by".
        names = [
            f.name
            for f in HealingAttempt._meta.fields
            if f.name not in ("requested_by", "requested_by_key")
        ]
        return [*names, "requested_by_actor"]

    @admin.display(description="requested by")
    def requested_by_actor(self, obj: HealingAttempt) -> str:
        """The user or API key who asked; the engine when it acted on its own."""
        return actor_label(obj.requested_by, obj.requested_by_key, system="the engine")
