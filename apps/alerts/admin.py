from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.alerts.models import (
    Channel,
    EscalationPolicy,
    EscalationStep,
    Notification,
    NotificationAttempt,
    NotificationStatus,
)
from apps.alerts.services import delivery
from apps.core.admin import TenantScopedAdmin


@admin.register(Channel)
class ChannelAdmin(TenantScopedAdmin):
    list_display = ["name", "organization", "kind", "enabled", "disabled_reason", "created_at"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "organization__slug"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    # The transport config is validated (and its secrets split off and encrypted) by the API;
    # here it is shown, never edited, and the encrypted half is not shown at all.
    exclude = ["secret"]
    readonly_fields = [
        "kind",
        "config",
        "disabled_reason",
        "created_at",
        "updated_at",
        "recent_deliveries",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # channels are created through the API, which validates their config

    @admin.display(description="last 20 deliveries")
    def recent_deliveries(self, obj: Channel) -> str:
        # Not an inline: a busy channel has thousands of rows and an inline formset has no
        # limit. One query on (channel, created_at).
        from django.urls import reverse
        from django.utils.html import format_html, format_html_join

        rows = Notification.objects.filter(channel=obj).order_by("-created_at")[:20]
        if not rows:
            return "none yet"
        return format_html(
            "<table><tr><th>at</th><th>kind</th><th>status</th><th>attempts</th>"
            "<th>last error</th></tr>{}</table>",
            format_html_join(
                "",
                '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
                (
                    (
                        reverse("admin:alerts_notification_change", args=[n.pk]),
                        f"{n.created_at:%Y-%m-%d %H:%M:%S}",
                        n.kind,
                        n.status,
                        n.attempts,
                        n.last_error[:120],
                    )
                    for n in rows
                ),
            ),
        )


class EscalationStepInline(admin.TabularInline):
    model = EscalationStep
    extra = 0
    filter_horizontal = ["channels"]


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(TenantScopedAdmin):
    list_display = ["name", "organization", "severities", "repeat", "enabled"]
    list_filter = ["enabled"]
    search_fields = ["name", "organization__slug"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    inlines = [EscalationStepInline]


@admin.register(EscalationStep)
class EscalationStepAdmin(TenantScopedAdmin):
    organization_field = "policy__organization"
    list_display = ["policy", "position", "delay_minutes"]
    list_select_related = ["policy"]
    raw_id_fields = ["policy"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return False  # edited inside their policy


class AttemptInline(admin.TabularInline):
    model = NotificationAttempt
    extra = 0
    can_delete = False
    fields = ["number", "started_at", "duration_ms", "ok", "permanent", "error", "details"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(TenantScopedAdmin):
    list_display = [
        "created_at",
        "organization",
        "channel",
        "kind",
        "severity",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
    ]
    list_filter = ["status", "kind", "severity", "is_group"]
    search_fields = ["idempotency_key", "organization__slug", "channel__name"]
    list_select_related = ["organization", "channel"]
    raw_id_fields = ["incident", "event", "group", "channel"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [AttemptInline]
    actions = ["retry_dead"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in Notification._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_operator(request)  # the delivery log is history

    @admin.action(description="Retry selected dead notifications")
    def retry_dead(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        queued = 0
        for n in queryset.filter(status=NotificationStatus.DEAD).select_related("channel"):
            if not self.has_change_permission(request, n):
                continue
            if not n.channel.enabled:
                self.message_user(
                    request,
                    f"{n}: its channel is disabled ({n.channel.disabled_reason}); enable it first.",
                    messages.WARNING,
                )
                continue
            queued += delivery.notification_retry(notification=n)
        self.message_user(
            request, f"Queued {queued} notification(s) for delivery.", messages.SUCCESS
        )


@admin.register(NotificationAttempt)
class NotificationAttemptAdmin(TenantScopedAdmin):
    organization_field = "notification__organization"
    list_display = ["notification", "number", "started_at", "ok", "permanent", "error"]
    list_filter = ["ok", "permanent"]
    list_select_related = ["notification"]
    raw_id_fields = ["notification"]
    show_full_result_count = False

    def has_module_permission(self, request: HttpRequest) -> bool:
        return False  # read inside their notification

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
