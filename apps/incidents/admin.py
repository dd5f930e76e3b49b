"""The console's view of incidents: timelines, rules, dependencies, windows and the flip log.

History (events, status changes) is read-only here as everywhere. Acknowledge and resolve go
through the same services as the API; window edits re-sync maintenance at once.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.actors import actor_label
from apps.core.admin import FixedChoicesFilter, ReadOnlyAdminMixin
from apps.incidents import services, sweeps
from apps.incidents.models import (
    CUSTOM_RULE,
    AlertRule,
    Incident,
    IncidentEvent,
    IncidentStatus,
    MaintenanceWindow,
    MonitorDependency,
    RuleKind,
    StatusChange,
)
from apps.tenants.gate.admin import TenantScopedAdmin


@admin.display(description="actor")
def event_actor(event: IncidentEvent) -> str:
    """The user, the API key (`API key "ci" (hk_...)`) or the system."""
    return actor_label(event.actor, event.actor_key, system="system")


class EventInline(admin.TabularInline):
    model = IncidentEvent
    fields = ["at", "kind", event_actor, "note", "count", "data"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["at", "id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[IncidentEvent]:
        return super().get_queryset(request).select_related("actor")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RuleFilter(FixedChoicesFilter):
    title, parameter_name = "rule", "rule"
    values = [*RuleKind.values, CUSTOM_RULE]


@admin.register(Incident)
class IncidentAdmin(TenantScopedAdmin):
    list_display = [
        "title",
        "organization",
        "severity",
        "status",
        "rule",
        "occurrences",
        "suppressed",
        "opened_at",
    ]
    list_filter = ["status", "severity", RuleFilter, "suppressed"]
    search_fields = ["title", "organization__slug", "monitor__name"]
    list_select_related = ["organization", "monitor"]
    date_hierarchy = "opened_at"
    inlines = [EventInline]
    actions = ["acknowledge", "resolve"]
    # An incident's facts come from the state machine; people act through the actions.
    readonly_fields = [
        "organization",
        "monitor",
        "rule",
        "severity",
        "status",
        "cause",
        "occurrences",
        "suppressed",
        "suppressed_reason",
        "opened_at",
        "last_seen_at",
        "acknowledged_at",
        "acknowledged_by_actor",
        "resolved_at",
        "resolved_by_actor",
        "escalation_step",
        "escalation_repeats",
        "next_escalation_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="acknowledged by")
    def acknowledged_by_actor(self, obj: Incident) -> str:
        return actor_label(obj.acknowledged_by, obj.acknowledged_by_key, system="-")

    @admin.display(description="resolved by")
    def resolved_by_actor(self, obj: Incident) -> str:
        if obj.resolved_at is None:
            return "-"
        return actor_label(obj.resolved_by, obj.resolved_by_key, system="the system")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_operator(request)

    def delete_model(self, request: HttpRequest, obj: Incident) -> None:
        services.incident_delete(incident=obj)

    @admin.action(description="Acknowledge selected incidents", permissions=["operate"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Incident]):
        targets = self.operable(request, queryset.filter(status=IncidentStatus.TRIGGERED))
        return self.confirm_each(
            request,
            targets,
            action="acknowledge",
            question=f"Acknowledge {len(targets)} incident(s)? Their escalation stops.",
            act=lambda i: services.incident_acknowledge(incident=i, user=request.user),
            done="{count} incident(s) updated.",
            nothing="No selected incident to acknowledge.",
            skip_refused=True,
            level=messages.INFO,
        )

    @admin.action(description="Resolve selected incidents", permissions=["operate"])
    def resolve(self, request: HttpRequest, queryset: QuerySet[Incident]):
        targets = self.operable(request, queryset.exclude(status=IncidentStatus.RESOLVED))
        return self.confirm_each(
            request,
            targets,
            action="resolve",
            question=f"Resolve {len(targets)} incident(s)? Subscribers are told they are resolved.",
            act=lambda i: services.incident_resolve(incident=i, user=request.user),
            done="{count} incident(s) updated.",
            nothing="No selected incident to resolve.",
            skip_refused=True,
            level=messages.INFO,
        )


@admin.register(IncidentEvent)
class IncidentEventAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ["at", "kind", "incident", "organization", event_actor, "count"]
    list_filter = ["kind"]
    list_select_related = ["incident", "organization", "actor"]
    search_fields = ["incident__title", "note"]


@admin.register(AlertRule)
class AlertRuleAdmin(TenantScopedAdmin):
    list_display = ["kind", "organization", "enabled", "threshold", "window_seconds", "severity"]
    list_filter = ["kind", "enabled", "severity"]
    list_select_related = ["organization"]
    search_fields = ["organization__slug"]
    autocomplete_fields = ["organization"]


@admin.register(MonitorDependency)
class MonitorDependencyAdmin(TenantScopedAdmin):
    list_display = ["monitor", "depends_on", "organization", "created_at"]
    list_select_related = ["monitor", "depends_on", "organization"]
    search_fields = ["monitor__name", "depends_on__name", "organization__slug"]
    raw_id_fields = ["monitor", "depends_on"]
    autocomplete_fields = ["organization"]


@admin.register(StatusChange)
class StatusChangeAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ["at", "monitor", "old", "new", "organization", "reason"]
    list_filter = ["new", "old"]
    list_select_related = ["monitor", "organization"]
    search_fields = ["monitor__name"]


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(TenantScopedAdmin):
    list_display = [
        "name",
        "organization",
        "kind",
        "recurrence",
        "starts_at",
        "ends_at",
        "all_monitors",
    ]
    list_filter = ["kind", "recurrence"]
    list_select_related = ["organization"]
    search_fields = ["name", "organization__slug"]
    raw_id_fields = ["monitors", "incident"]
    autocomplete_fields = ["organization"]
    readonly_fields = ["created_by_actor"]

    @admin.display(description="created by")
    def created_by_actor(self, obj: MaintenanceWindow) -> str:
        if obj.pk is None:
            return "-"
        return actor_label(obj.created_by, obj.created_by_key, system="the system")

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        sweeps.maintenance_sync(org_ids={form.instance.organization_id})

    def delete_model(self, request: HttpRequest, obj: MaintenanceWindow) -> None:
        services.window_delete(window=obj)
