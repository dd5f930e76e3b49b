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
from apps.alerts.services import channels, delivery, policies
from apps.core.admin import ReadOnlyAdminMixin
from apps.tenants.gate.admin import TenantScopedAdmin

TEST_MAX = 10  # test messages are sent from the web process, one after another


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

    actions = ["send_test"]

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

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # A channel does not move between organizations (its secrets and routes are theirs).
        return [*self.readonly_fields, "organization"]

    def save_model(self, request: HttpRequest, obj: Channel, form: Any, change: bool) -> None:
        data = {f: form.cleaned_data[f] for f in form.changed_data}
        if data:  # "Save" on an unchanged form changes (and records) nothing
            channels.channel_update(channel=Channel.objects.get(pk=obj.pk), data=data)

    def delete_model(self, request: HttpRequest, obj: Channel) -> None:
        channels.channel_delete(channel=obj)

    @admin.action(description="Send a test notification", permissions=["operate"])
    def send_test(self, request: HttpRequest, queryset: QuerySet[Channel]):
        targets = self.operable(request, queryset.select_related("organization"))
        if not targets:
            return self.nothing_to_do(request, "No channel selected that you may test.")
        if len(targets) > TEST_MAX:
            return self.nothing_to_do(request, f"Test at most {TEST_MAX} channels at once.")
        page = self.confirm(
            request,
            targets,
            action="send_test",
            question=f"Send a test message through {len(targets)} channel(s) now?",
        )
        if page:
            return page
        for channel in targets:
            sent = channels.channel_test(channel=channel)
            level = messages.SUCCESS if sent.status == NotificationStatus.SENT else messages.ERROR
            error = f" ({sent.last_error})" if sent.last_error else ""
            self.message_user(request, f"{channel}: test {sent.status}{error}.", level)


def _policy_data(form: Any, formsets: Any) -> dict[str, Any]:
    """The policy form and its step inlines as the service's input (steps in order)."""
    steps = []
    for formset in formsets:
        for row in formset.cleaned_data:
            if row and not row.get("DELETE"):
                steps.append(row)
    steps.sort(key=lambda row: row.get("position") or 0)
    data = {f: form.cleaned_data[f] for f in ("name", "severities", "repeat", "enabled")}
    data["steps"] = [
        {"delay_minutes": row["delay_minutes"], "channels": [c.pk for c in row["channels"]]}
        for row in steps
    ]
    return data


class EscalationStepInline(admin.TabularInline):
    model = EscalationStep
    extra = 0
    filter_horizontal = ["channels"]

    # Steps are edited with their policy: the policy admin's tenant gate decides (Django's
    # model permissions would hide them from every tenant member).
    def _policy_admin(self) -> TenantScopedAdmin:
        return self.admin_site._registry[EscalationPolicy]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._policy_admin().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        parent = self._policy_admin()
        return (
            parent.has_change_permission(request, obj)
            if obj
            else parent.has_add_permission(request)
        )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_add_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_add_permission(request, obj)

    def formfield_for_manytomany(self, db_field, request: HttpRequest, **kwargs: Any):
        # Only the channels of organizations this person writes in are offered.
        if db_field.name == "channels":
            parent = self._policy_admin()
            channels = Channel.objects.select_related("organization")
            if not parent._is_operator(request):
                channels = channels.filter(
                    organization__in=parent._org_ids(request, parent.write_roles)
                )
            kwargs["queryset"] = channels
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(TenantScopedAdmin):
    list_display = ["name", "organization", "severities", "repeat", "enabled"]
    list_filter = ["enabled"]
    search_fields = ["name", "organization__slug"]
    list_select_related = ["organization"]
    autocomplete_fields = ["organization"]
    inlines = [EscalationStepInline]

    # The policy and its steps are written together by the service (in save_related, where
    # the inlines are known): one severity per policy, the plan's feature, the audit entry.
    def save_model(self, request: HttpRequest, obj: EscalationPolicy, form, change: bool) -> None:
        pass

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        data = _policy_data(form, formsets)
        for formset in formsets:  # what the admin's history message reads after a save
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        if change:
            saved = policies.policy_update(
                policy=EscalationPolicy.objects.get(pk=form.instance.pk), data=data
            )
        else:
            saved = policies.policy_create(org=form.cleaned_data["organization"], data=data)
        form.instance.pk = saved.pk
        form.instance._state.adding = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["organization"] if obj is not None else []

    def delete_model(self, request: HttpRequest, obj: EscalationPolicy) -> None:
        policies.policy_delete(policy=obj)


@admin.register(EscalationStep)
class EscalationStepAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    # Read-only on its own: steps change only with their policy, through its service.
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

    @admin.action(description="Retry selected dead notifications", permissions=["operate"])
    def retry_dead(self, request: HttpRequest, queryset: QuerySet[Notification]):
        dead = self.operable(
            request, queryset.filter(status=NotificationStatus.DEAD).select_related("channel")
        )
        targets = [n for n in dead if n.channel.enabled]
        for n in dead:
            if not n.channel.enabled:
                self.message_user(
                    request,
                    f"{n}: its channel is disabled ({n.channel.disabled_reason}); enable it first.",
                    messages.WARNING,
                )
        if not targets:
            return self.nothing_to_do(request, "No dead notification to retry.")
        page = self.confirm(
            request,
            targets,
            action="retry_dead",
            question=f"Send {len(targets)} dead notification(s) again, with a fresh budget?",
        )
        if page:
            return page
        queued = sum(delivery.notification_retry(notification=n) for n in targets)
        self.message_user(
            request, f"Queued {queued} notification(s) for delivery.", messages.SUCCESS
        )


@admin.register(NotificationAttempt)
class NotificationAttemptAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    organization_field = "notification__organization"
    list_display = ["notification", "number", "started_at", "ok", "permanent", "error"]
    list_filter = ["ok", "permanent"]
    list_select_related = ["notification"]
    raw_id_fields = ["notification"]
    show_full_result_count = False
    delete_by = "base"

    def has_module_permission(self, request: HttpRequest) -> bool:
        return False  # read inside their notification
