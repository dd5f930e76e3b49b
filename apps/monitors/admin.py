from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.admin import FixedChoicesFilter, OperatorOnlyAdmin, ReadOnlyAdminMixin
from apps.monitors import services
from apps.monitors.checkers.base import ErrorClass, Outcome
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

# Checks run in the web process, one after another: keep a click's worth of them bounded.
CHECK_NOW_MAX = 20


def _messages(detail: Any, within: str = "") -> list[str]:
    """DRF's nested error detail ({"url": ["..."]} under `config`) as flat, readable lines,
    each prefixed with its key unless that repeats the key it sits in."""
    if isinstance(detail, dict):
        return [
            line if key in ("non_field_errors", within) else f"{key}: {line}"
            for key, value in detail.items()
            for line in _messages(value, key)
        ]
    if isinstance(detail, list):
        return [line for item in detail for line in _messages(item, within)]
    return [str(detail)]


class MonitorForm(forms.ModelForm):
    """The console's monitor form validates exactly as the API does: the same input
    serializer (per-kind config, the SSRF guard at save, secrets moved out of the config,
    regions and quorum), so a console save cannot store what the API would refuse. Plan
    limits are the services' (their refusal becomes the console's error message)."""

    validated: dict[str, Any]

    def clean(self) -> dict[str, Any]:
        from apps.monitors.api.serializers import MonitorInput

        cleaned = super().clean()
        adding = self.instance._state.adding
        # On a change, what differs from the stored monitor (not `changed_data`: fields with a
        # callable default compare against a hidden initial input a client may leave out).
        payload = {
            name: cleaned[name]
            for name, field in MonitorInput().fields.items()
            if name in cleaned
            and not field.read_only
            and (adding or cleaned[name] != getattr(self.instance, name))
        }
        if not adding:
            payload.pop("kind", None)  # a monitor's kind never changes (the API says so too)
        serializer = MonitorInput(
            data=payload, partial=not adding, context={"monitor": self.instance}
        )
        if serializer.is_valid():
            self.validated = dict(serializer.validated_data)
            return cleaned
        for field, detail in serializer.errors.items():
            for line in _messages(detail, field):
                self.add_error(field if field in self.fields else None, line)
        return cleaned


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
    readonly_fields = [
        "paused",
        "status",
        "status_changed_at",
        "consecutive_failures",
        "consecutive_successes",
        "last_checked_at",
        "last_up_at",
        "next_check_at",
        "ping_token",
        "last_ping_at",
        "paused_reason",
        "created_at",
        "updated_at",
    ]
    exclude = ["secret", "last_start_at"]
    actions = ["pause", "resume", "check_now"]

    # Members with a writing role add and edit their organization's monitors here as through
    # the API: the form validates as the API does, and saves go through the same services.
    form = MonitorForm

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
