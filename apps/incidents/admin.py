"""The console's view of incidents: timelines, rules, dependencies, windows and the flip log.

History (events, status changes) is read-only here as everywhere. Acknowledge and resolve go
through the same services as the API; window edits re-sync maintenance at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from apps.core.actors import actor_label
from apps.core.admin import (
    FixedChoicesFilter,
    ReadOnlyAdminMixin,
    object_urls,
    refusal_text,
    refusals,
)
from apps.core.facts import facts_table
from apps.incidents import describe, services, sweeps
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


@admin.display(description="what happened")
def event_what(event: IncidentEvent) -> str:
    return describe.event_sentence(event)


@admin.display(description="details")
def event_details(event: IncidentEvent) -> str:
    return facts_table(event.data, skip=describe.EVENT_QUIET)


class EventInline(admin.TabularInline):
    model = IncidentEvent
    fields = ["at", event_what, "note", event_details]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["at", "id"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[IncidentEvent]:
        return super().get_queryset(request).select_related("actor")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # The timeline is the incident's: whoever sees the incident (by the tenancy gate) reads it,
    # nobody edits it (Django's default asks per-model permissions members do not hold).
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.admin_site._registry[Incident].has_view_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
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
    # The cause is shown as a sentence and a table (cause_text; the API returns the JSON); who
    # acknowledged and resolved is the services' record (the *_by_actor lines), never typed in.
    exclude = ["cause", "acknowledged_by", "acknowledged_by_key", "resolved_by", "resolved_by_key"]
    # An incident's facts come from the state machine; people act through the actions.
    readonly_fields = [
        "organization",
        "monitor",
        "rule",
        "severity",
        "status",
        "cause_text",
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

    #: the buttons on an incident's page; each posts to its own URL (act_view)
    PAGE_ACTIONS = ("acknowledge", "resolve", "note", "snooze")
    SNOOZE_CHOICES = (15, 60, 240, 1440)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="cause")
    def cause_text(self, obj: Incident) -> str:
        return format_html(
            '<p class="console-sentence">{}</p>{}',
            describe.cause_sentence(obj),
            facts_table(obj.cause, skip=describe.CAUSE_TOLD),
        )

    def get_urls(self) -> list:
        return [
            *object_urls(self, ("act/<slug:action>", self.act_view, "act")),
            *super().get_urls(),
        ]

    def operate_context(self, request: HttpRequest, incident: Incident) -> dict[str, Any]:
        return {
            "incident_actions": {
                "acknowledge": incident.status == IncidentStatus.TRIGGERED,
                "resolve": incident.status != IncidentStatus.RESOLVED,
                "note": True,
                "snooze": incident.is_open and incident.monitor_id is not None,
                "snooze_choices": self.SNOOZE_CHOICES,
                "urls": {
                    action: reverse("admin:incidents_incident_act", args=[incident.pk, action])
                    for action in self.PAGE_ACTIONS
                },
            }
        }

    def act_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """One button of the incident's page: acknowledge, resolve, add a note or snooze,
        through the same services as the API (which record the actor and the audit entry).
        Another organization's incident is a 404 whatever the method; a viewer's is a 403."""
        incident = self.get_object(request, unquote(object_id))
        if incident is None or action not in self.PAGE_ACTIONS:
            raise Http404
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        if not self.has_operate_permission(request, incident):
            raise PermissionDenied
        note = request.POST.get("note", "").strip()[:2000]
        back = HttpResponseRedirect(reverse("admin:incidents_incident_change", args=[incident.pk]))
        try:
            if action == "acknowledge":
                services.incident_acknowledge(incident=incident, user=request.user, note=note)
                done = "Acknowledged: escalation stopped."
            elif action == "resolve":
                services.incident_resolve(incident=incident, user=request.user, note=note)
                done = "Resolved."
            elif action == "note":
                if not note:
                    self.message_user(request, "Write the note first.", messages.WARNING)
                    return back
                services.incident_note(incident=incident, user=request.user, text=note)
                done = "Note added to the timeline."
            else:
                try:
                    minutes = int(request.POST.get("minutes", ""))
                except ValueError:
                    minutes = 0
                if minutes not in self.SNOOZE_CHOICES:
                    self.message_user(request, "Choose how long to snooze.", messages.WARNING)
                    return back
                window = services.incident_snooze(
                    incident=incident, user=request.user, minutes=minutes
                )
                done = (
                    f"Snoozed: new incidents of this monitor are not notified until "
                    f"{window.ends_at:%H:%M} UTC."
                )
        except refusals as exc:
            self.message_user(request, f"Nothing was changed: {refusal_text(exc)}", messages.ERROR)
            return back
        self.message_user(request, done, messages.SUCCESS)
        return back

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
        question = f"Acknowledge {len(targets)} incident(s)? Their escalation stops."
        return self._settle_each(
            request, targets, "acknowledge", question, services.incident_acknowledge
        )

    @admin.action(description="Resolve selected incidents", permissions=["operate"])
    def resolve(self, request: HttpRequest, queryset: QuerySet[Incident]):
        targets = self.operable(request, queryset.exclude(status=IncidentStatus.RESOLVED))
        question = f"Resolve {len(targets)} incident(s)? Subscribers are told they are resolved."
        return self._settle_each(request, targets, "resolve", question, services.incident_resolve)

    def _settle_each(
        self,
        request: HttpRequest,
        targets: list[Incident],
        action: str,
        question: str,
        service: Callable[..., Incident],
    ):
        """Confirm, then `service` (acknowledge, resolve) each incident as the signed-in user;
        one the service refuses is named and skipped."""
        return self.confirm_each(
            request,
            targets,
            action=action,
            question=question,
            act=lambda i: service(incident=i, user=request.user),
            done="{count} incident(s) updated.",
            nothing=f"No selected incident to {action}.",
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
