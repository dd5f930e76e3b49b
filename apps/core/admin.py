"""What every console page shares, whoever may see it: a service's refusal shown as a message
(the whole save rolled back), a confirmation page before write actions, operator-only pages and
list filters with fixed choices.

Which organization's rows a tenant member sees is the tenancy gate's business:
apps.tenants.gate.admin (TenantScopedAdmin builds on ConsoleAdmin).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path
from rest_framework.exceptions import ValidationError as InvalidInput

from apps.core.errors import ServiceError, UpgradeRequired


def is_operator(request: HttpRequest) -> bool:
    """Operators (superusers) see the whole platform; everyone else sees their organizations."""
    return request.user.is_active and request.user.is_superuser


_REFUSALS = (ServiceError, UpgradeRequired, InvalidInput)

#: what a service raises to refuse (caught by the console's own views and shown as a message)
refusals = _REFUSALS


def refusal_text(exc: Exception) -> str:
    """A service's refusal in one sentence, for a console message."""
    if isinstance(exc, ServiceError):
        return exc.detail
    if isinstance(exc, UpgradeRequired):
        cap = f" (limit {exc.limit})" if exc.limit is not None else ""
        return f"upgrade required: the {exc.current_plan} plan does not include {exc.feature}{cap}."
    detail = exc.detail if isinstance(exc, InvalidInput) else str(exc)
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {' '.join(map(str, _as_list(v)))}" for k, v in detail.items())
    return " ".join(map(str, _as_list(detail)))


def object_urls(model_admin: admin.ModelAdmin, *views: tuple[str, Callable, str]) -> list:
    """URLs of extra pages on one object of `model_admin`: each (path after the object's id,
    view, name suffix) becomes `<object_id>/<path>/`, named `<app>_<model>_<suffix>`, behind
    the admin's own login and permission gate."""
    app, model = model_admin.opts.app_label, model_admin.opts.model_name
    return [
        path(
            f"<path:object_id>/{suffix}/",
            model_admin.admin_site.admin_view(view),
            name=f"{app}_{model}_{name}",
        )
        for suffix, view, name in views
    ]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class ConsoleAdmin(admin.ModelAdmin):
    """What every console page shares: refusals as messages, confirmation of actions."""

    def _refused(self, request: HttpRequest, exc: Exception, what: str) -> HttpResponse:
        # The admin's own transaction (form + inlines) was rolled back by the exception.
        self.message_user(request, f"{what}: {refusal_text(exc)}", messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())

    def changeform_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().changeform_view(request, *args, **kwargs)
        except _REFUSALS as exc:
            return self._refused(request, exc, "Nothing was saved")

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        # Where an admin deletes through a service (which records each deletion), the bulk
        # "delete selected" goes through it one object at a time; elsewhere Django's one DELETE.
        if type(self).delete_model is admin.ModelAdmin.delete_model:
            super().delete_queryset(request, queryset)
            return
        for obj in queryset:
            self.delete_model(request, obj)

    def delete_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().delete_view(request, *args, **kwargs)
        except _REFUSALS as exc:
            return self._refused(request, exc, "Nothing was deleted")

    def changelist_view(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().changelist_view(request, *args, **kwargs)
        except _REFUSALS as exc:
            return self._refused(request, exc, "Stopped")

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ) -> HttpResponse:
        # Only an admin with buttons of its own loads the object once more to offer them.
        if type(self).operate_context is not ConsoleAdmin.operate_context:
            obj = self.get_object(request, unquote(object_id))
            if obj is not None and self.has_operate_permission(request, obj):
                extra_context = {**(extra_context or {}), **self.operate_context(request, obj)}
        return super().change_view(request, object_id, form_url, extra_context)

    def operate_context(self, request: HttpRequest, obj: Any) -> dict[str, Any]:
        """Template context for the buttons on the page of `obj`, which this user may operate
        (acknowledge, check now...); the page has none by default."""
        return {}

    def has_operate_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """May run write actions (pause, acknowledge, retry...): operators by default."""
        return request.user.is_active and request.user.is_superuser

    def operable(self, request: HttpRequest, objects: Any) -> list[Any]:
        """The selected objects this user may act on (per object: a member of several
        organizations may write in one and only read in another)."""
        return [obj for obj in objects if self.has_operate_permission(request, obj)]

    def confirm(
        self,
        request: HttpRequest,
        objects: Sequence[Any],
        *,
        action: str,
        question: str,
        detail: str = "",
    ) -> TemplateResponse | None:
        """The page asking "are you sure?" before `action` acts on `objects`; None once the
        person said yes (the page posts the same selection back with `confirm=yes`)."""
        if request.POST.get("confirm") == "yes":
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Are you sure?",
            "question": question,
            "detail": detail,
            "opts": self.model._meta,
            "shown": list(objects[:50]),
            "more": max(0, len(objects) - 50),
            "pks": [obj.pk for obj in objects],
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/healthorch/confirm_action.html", context)

    def nothing_to_do(self, request: HttpRequest, what: str) -> None:
        self.message_user(request, what, messages.WARNING)

    def confirm_each(
        self,
        request: HttpRequest,
        targets: Sequence[Any],
        *,
        action: str,
        question: str,
        act: Callable[[Any], Any],
        done: str,
        nothing: str,
        skip_refused: bool = False,
        level: int = messages.SUCCESS,
    ) -> TemplateResponse | None:
        """The shape of a write action on the selected rows that qualify (`targets`): a warning
        (`nothing`) when none does; else the confirmation page; once confirmed, `act(obj)` on
        each, then `done` (formatted with `{count}`, how many were acted on) as the message.
        With `skip_refused`, a service's refusal of one row is a warning naming it and the
        others go on; otherwise the refusal stops the action and the list says why."""
        if not targets:
            self.nothing_to_do(request, nothing)
            return None
        page = self.confirm(request, targets, action=action, question=question)
        if page:
            return page
        count = 0
        for obj in targets:
            try:
                act(obj)
            except ServiceError as exc:
                if not skip_refused:
                    raise
                self.message_user(request, f"{obj}: {exc.detail}", messages.WARNING)
                continue
            count += 1
        self.message_user(request, done.format(count=count), level)
        return None


class FixedChoicesFilter(admin.SimpleListFilter):
    """A filter whose choices are known in code: Django's default for a plain CharField runs
    SELECT DISTINCT over the whole table on every page (30 ms per filter at 100,000 results)."""

    values: ClassVar[list[str]] = []

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(v, v) for v in self.values]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        return queryset if value is None else queryset.filter(**{self.parameter_name: value})


class OperatorOnlyAdmin(ConsoleAdmin):
    """Platform-wide models (plans, billing internals): invisible to tenant members."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser


class ReadOnlyAdminMixin:
    """Rows shown, never added or changed in the console: history, facts owned by another
    system (Stripe, the engine), or rows written only through the API's services. A mixin, so
    it goes with any admin base; list it first: `class X(ReadOnlyAdminMixin, SomeAdmin)`.

    `delete_by` says who may still delete: "nobody" (the default), "operators" (retention-like
    clean-up; tenants never rewrite history), or "base" (whatever the admin base allows, for
    rows deleted through a service in `delete_model`)."""

    delete_by: ClassVar[str] = "nobody"

    # `obj` is optional so the same methods serve inlines, whose add check takes it.
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if self.delete_by == "operators":
            return is_operator(request)
        if self.delete_by == "base":
            return super().has_delete_permission(request, obj)  # type: ignore[misc]
        return False
