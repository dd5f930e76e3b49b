from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from apps.core.admin import (
    FixedChoicesFilter,
    OperatorOnlyAdmin,
    ReadOnlyAdminMixin,
    object_urls,
    refusal_text,
    refusals,
)
from apps.monitors import services
from apps.monitors.checkers.base import ErrorClass, Outcome
from apps.monitors.console_form import KIND_FIELDS, MonitorForm, field_name
from apps.monitors.models import (
    ACTIVE_KINDS,
    CheckResult,
    ErrorRollup,
    HeartbeatPing,
    MetricSample,
    Monitor,
    MonitorSchedule,
    ResultRollup,
)
from apps.tenants.gate.admin import TenantScopedAdmin


def check_summary(result: CheckResult) -> str:
    """A check's result in one line: `up, HTTP 200 in 35 ms` or `down: connection refused`."""
    parts = [result.outcome]
    if result.status_code:
        parts.append(f"HTTP {result.status_code}")
    text = ", ".join(parts)
    if result.response_time_ms is not None:
        text += f" in {result.response_time_ms:.0f} ms"
    if result.error_message:
        text += f": {result.error_message}"
    return text


# Checks run in the web process, one after another: keep a click's worth of them bounded.
CHECK_NOW_MAX = 20


@admin.register(Monitor)
class MonitorAdmin(TenantScopedAdmin):
    list_display = [
        "name",
        "organization",
        "kind",
        "status",
        "interval_seconds",
        "critical",
        "paused",
        "last_checked_at",
        "next_check_at",
    ]
    list_filter = ["kind", "status", "paused", "critical"]
    search_fields = ["name", "slug", "organization__slug"]
    list_select_related = ["organization", "schedule"]
    autocomplete_fields = ["organization"]
    # `paused` changes only through the actions (resuming takes a plan slot).
    # The engine's state and bookkeeping: shown, never edited here (`paused` changes only
    # through the actions, since resuming takes a plan slot).
    STATE_FIELDS = [
        "status",
        "paused",
        "paused_reason",
        "status_changed_at",
        "consecutive_failures",
        "consecutive_successes",
        "last_checked_at",
        "last_up_at",
        "next_check_at",
        "ping_token",
        "last_ping_at",
        "created_at",
        "updated_at",
    ]
    readonly_fields = STATE_FIELDS
    exclude = ["secret", "last_start_at"]
    actions = ["pause", "resume", "check_now"]

    # Members with a writing role add and edit their organization's monitors here as through
    # the API: the form validates as the API does, and saves go through the same services.
    form = MonitorForm

    class Media:
        # Shows the chosen kind's settings only, tags as chips, the check-now result inline.
        js = ["console/monitor_form.js"]

    def get_urls(self) -> list:
        return [
            *object_urls(self, ("check-now", self.check_now_view, "check_now")),
            *super().get_urls(),
        ]

    def operate_context(self, request: HttpRequest, monitor: Monitor) -> dict[str, Any]:
        if monitor.kind not in ACTIVE_KINDS:
            return {}
        return {
            "check_now_url": reverse("admin:monitors_monitor_check_now", args=[monitor.pk]),
            "check_now_paused": monitor.paused,
        }

    def check_now_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """ "Check now" on a monitor's page: one check through the monitors service (the
        outbound guard applies, the result is recorded and audited), its result shown on the
        page (a fragment for the page's script; a message after a plain form post). Another
        organization's monitor is a 404 whatever the method; a viewer's is a 403."""
        monitor = self.get_object(request, unquote(object_id))
        if monitor is None:
            raise Http404
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        if not self.has_operate_permission(request, monitor):
            raise PermissionDenied
        result, refused = None, ""
        try:
            result = services.monitor_check_now(monitor=monitor)
        except refusals as exc:
            refused = refusal_text(exc)
        if request.headers.get("X-Requested-With") == "fetch":
            return TemplateResponse(
                request,
                "admin/monitors/monitor/check_result.html",
                {"result": result, "refused": refused},
            )
        if result is None:
            self.message_user(request, f"Not checked: {refused}", messages.ERROR)
        else:
            self.message_user(request, f"Checked: {check_summary(result)}", messages.INFO)
        return HttpResponseRedirect(reverse("admin:monitors_monitor_change", args=[monitor.pk]))

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        initial = super().get_changeform_initial_data(request)
        writable = self._org_ids(request, self.write_roles)
        if "organization" not in initial and len(writable) == 1 and not self._is_operator(request):
            initial["organization"] = writable[0]  # a member of one organization adds there
        return initial

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list:
        """What the monitor is, then its kind's settings (all kinds' on the add page, the
        script showing the chosen one), then scheduling, labels, the raw JSON for operators,
        and its state."""
        first = ["organization", "name", "slug", "kind"]
        kinds = [obj.kind] if obj is not None else list(KIND_FIELDS)
        sets: list = [(None, {"fields": first})]
        for kind in kinds:
            sets.append(
                (
                    f"{kind.upper()} check"
                    if kind in ("http", "tcp", "tls", "dns")
                    else f"{kind.capitalize()} check",
                    {
                        "fields": [field_name(kind, item.key) for item in KIND_FIELDS[kind]],
                        "classes": ["kind-fields", f"kind-{kind}"],
                    },
                )
            )
        sets.append(
            (
                "Schedule",
                {
                    "fields": [
                        "interval_seconds",
                        "timeout_seconds",
                        ("failure_threshold", "recovery_threshold"),
                        "regions",
                        "quorum",
                    ]
                },
            )
        )
        sets.append(("Labels", {"fields": ["tags", "critical", "expected_response_time_ms"]}))
        if self._is_operator(request):
            sets.append(
                (
                    "Advanced: raw JSON",
                    {"fields": ["raw_config", "config"], "classes": ["collapse"]},
                )
            )
        if obj is not None:
            sets.append(("State", {"fields": self.STATE_FIELDS, "classes": ["collapse"]}))
        return sets

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        # The kind fields are the form's own, not the model's: declared per request (only the
        # monitor's kind on its page), and the raw JSON box is offered to operators only.
        kinds = [obj.kind] if obj is not None else list(KIND_FIELDS)
        declared = {
            field_name(kind, item.key): item.field for kind in kinds for item in KIND_FIELDS[kind]
        }
        operator = self._is_operator(request)
        if not operator:
            declared["raw_config"] = None  # the raw JSON box is for operators only
        base = type("MonitorKindForm", (self.form,), {**declared, "advanced": operator})
        kwargs["form"] = base
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(self.readonly_fields)
        if obj is not None:
            fields.append("kind")  # fixed once made
            if not self._is_operator(request):
                fields.append("organization")  # tenants do not move monitors between orgs
        return fields

    def save_model(self, request: HttpRequest, obj: Monitor, form: Any, change: bool) -> None:
        # Through the services, as the API: scheduled, checked against the plan, audited.
        data = dict(form.validated)
        if change:
            if "organization" in form.changed_data:  # operators only (read-only for tenants)
                data["organization"] = obj.organization
            services.monitor_update(monitor=Monitor.objects.get(pk=obj.pk), data=data)
            return
        made = services.monitor_create(org=obj.organization, data=data)
        obj.pk, obj.slug = made.pk, made.slug
        obj._state.adding = False

    def get_deleted_objects(self, objs: Any, request: HttpRequest):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # The schedule row goes with its monitor: the engine's row, not one a person deletes.
        perms_needed.discard(MonitorSchedule._meta.verbose_name)
        return deleted, counts, perms_needed, protected

    def delete_model(self, request: HttpRequest, obj: Monitor) -> None:
        services.monitor_delete(monitor=obj)

    @admin.action(description="Pause selected monitors", permissions=["operate"])
    def pause(self, request: HttpRequest, queryset: QuerySet[Monitor]):
        targets = self.operable(request, queryset.filter(paused=False))
        return self.confirm_each(
            request,
            targets,
            action="pause",
            question=f"Pause {len(targets)} monitor(s)? They are not checked until resumed.",
            act=lambda m: services.monitor_pause(monitor=m, reason=f"paused by {request.user}"),
            done="Paused {count} monitor(s).",
            nothing="None of the selected monitors can be paused.",
        )

    @admin.action(description="Resume selected monitors", permissions=["operate"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Monitor]):
        from apps.core.errors import UpgradeRequired

        targets = self.operable(
            request, queryset.filter(paused=True).select_related("organization__plan")
        )
        if not targets:
            return self.nothing_to_do(request, "None of the selected monitors is paused.")
        page = self.confirm(
            request,
            targets,
            action="resume",
            question=f"Resume {len(targets)} monitor(s)? Each takes a slot of its plan.",
        )
        if page:
            return page
        done = 0
        for monitor in targets:
            try:
                services.monitor_resume(monitor=monitor)
                done += 1
            except UpgradeRequired as exc:
                self.message_user(request, f"{monitor}: {exc}", messages.ERROR)
                break
        self.message_user(request, f"Resumed {done} monitor(s).", messages.SUCCESS)

    @admin.action(description="Check selected monitors now", permissions=["operate"])
    def check_now(self, request: HttpRequest, queryset: QuerySet[Monitor]):
        targets = [
            m
            for m in self.operable(request, queryset.filter(paused=False))
            if m.kind in ACTIVE_KINDS
        ]
        if not targets:
            return self.nothing_to_do(
                request, "Only active, unpaused http/tcp/tls/dns/postgres/redis monitors run now."
            )
        if len(targets) > CHECK_NOW_MAX:
            return self.nothing_to_do(
                request, f"Check at most {CHECK_NOW_MAX} monitors at once (each runs here)."
            )
        page = self.confirm(
            request,
            targets,
            action="check_now",
            question=f"Run {len(targets)} check(s) now? Results count like scheduled ones.",
        )
        if page:
            return page
        outcomes = [f"{m.name}: {services.monitor_check_now(monitor=m).outcome}" for m in targets]
        self.message_user(request, "Checked " + "; ".join(outcomes) + ".", messages.SUCCESS)


class OutcomeFilter(FixedChoicesFilter):
    title, parameter_name = "outcome", "outcome"
    values = [Outcome.UP, Outcome.DEGRADED, Outcome.DOWN, Outcome.INCONCLUSIVE]


class ErrorClassFilter(FixedChoicesFilter):
    title, parameter_name = "error class", "error_class"
    values = [v for k, v in vars(ErrorClass).items() if k.isupper() and v]


class RegionFilter(FixedChoicesFilter):
    title, parameter_name = "region", "region"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(r, r) for r in settings.HEALTHORCH_REGIONS]


class _History(ReadOnlyAdminMixin, TenantScopedAdmin):
    """Append-only history: visible, filterable, never edited.

    These tables are the big ones, so every list is newest first by the primary key (there is
    no index on their timestamps alone: ordering by one sorts the table on every page) and
    shows no full count beside a filtered one. Subclasses use date filters and fixed-choice
    filters, not date_hierarchy or plain field filters: each of those scans the whole table
    per page."""

    ordering = ["-id"]
    show_full_result_count = False
    delete_by = "operators"  # retention prunes; tenants do not rewrite history


@admin.register(CheckResult)
class CheckResultAdmin(_History):
    list_display = [
        "monitor",
        "checked_at",
        "region",
        "outcome",
        "response_time_ms",
        "status_code",
        "error_class",
    ]
    # No date_hierarchy and fixed-choice filters: each of those scans the whole table per page.
    list_filter = [
        ("checked_at", admin.DateFieldListFilter),
        OutcomeFilter,
        RegionFilter,
        ErrorClassFilter,
    ]
    list_select_related = ["monitor"]
    raw_id_fields = ["monitor"]


@admin.register(HeartbeatPing)
class HeartbeatPingAdmin(_History):
    list_display = ["monitor", "received_at", "kind", "exit_code", "duration_ms", "remote_addr"]
    list_filter = ["kind", ("received_at", admin.DateFieldListFilter)]
    list_select_related = ["monitor"]
    raw_id_fields = ["monitor"]


@admin.register(MetricSample)
class MetricSampleAdmin(_History):
    list_display = ["organization", "source", "name", "value", "ts"]
    list_filter = [("ts", admin.DateFieldListFilter)]
    search_fields = ["source", "name"]
    list_select_related = ["organization"]


@admin.register(ResultRollup)
class ResultRollupAdmin(_History):
    list_display = [
        "monitor",
        "granularity",
        "bucket_start",
        "total",
        "up",
        "degraded",
        "down",
        "p50_ms",
        "p95_ms",
        "p99_ms",
    ]
    list_filter = ["granularity", ("bucket_start", admin.DateFieldListFilter)]
    list_select_related = ["monitor"]
    raw_id_fields = ["monitor"]


@admin.register(ErrorRollup)
class ErrorRollupAdmin(_History):
    list_display = ["monitor", "bucket_start", "outcome", "error_class", "message", "count"]
    list_filter = [("bucket_start", admin.DateFieldListFilter), OutcomeFilter, ErrorClassFilter]
    search_fields = ["message"]
    list_select_related = ["monitor"]
    raw_id_fields = ["monitor"]


@admin.register(MonitorSchedule)
class MonitorScheduleAdmin(ReadOnlyAdminMixin, OperatorOnlyAdmin):
    """The dispatcher's queue, for operators diagnosing scheduler lag: read-only, because the
    engine owns these rows (pause/resume and edits of the monitor move them)."""

    list_display = ("monitor", "lane", "next_check_at", "interval_seconds", "regions")
    list_filter = ("lane",)
    list_select_related = ("monitor",)
    raw_id_fields = ("monitor",)
    ordering = ("next_check_at",)
    show_full_result_count = False
