"""The console's tenancy gate: one ModelAdmin base that scopes everything to the member's orgs.

Operators (superusers) see every organization. Tenant members who may use the admin (staff
users with memberships) see only rows of organizations they belong to; what they may do follows
their role there (viewers read, members edit, owners/admins also manage members and keys),
not Django's per-model permissions, so roles mean the same in the API and the console.
Another tenant's object id typed into the URL is "not found", as in the API.

Writes made here go through the same services as the API (so they are validated, gated by the
plan and audited); a service's refusal becomes an error message and rolls the whole save back.
Write actions ask `operate` permission (the roles that may write, per object) and show a
confirmation page (`ConsoleAdmin.confirm`) before they act.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from rest_framework.exceptions import ValidationError as InvalidInput

from apps.core.errors import ServiceError, UpgradeRequired
from apps.tenants.models import Membership, Organization, Role

_WRITE_ROLES = {Role.OWNER, Role.ADMIN, Role.MEMBER}
_MANAGE_ROLES = {Role.OWNER, Role.ADMIN}


#: the organization a member of several chose in the console's switcher (its id as text)
SESSION_ORG_KEY = "console_organization"


def is_operator(request: HttpRequest) -> bool:
    """Operators (superusers) see the whole platform; everyone else sees their organizations."""
    return request.user.is_active and request.user.is_superuser


def tenant_roles(request: HttpRequest, *, scoped: bool = True) -> dict[Any, str]:
    """{organization_id: role} for the signed-in user, cached on the request.

    `scoped`: only the organization chosen in the switcher, when one is chosen and the user is
    still a member there; otherwise every membership.
    """
    cached = getattr(request, "_tenant_roles", None)
    if cached is None:
        cached = dict(
            Membership.objects.filter(user_id=request.user.pk).values_list(
                "organization_id", "role"
            )
        )
        request._tenant_roles = cached
    if not scoped:
        return cached
    chosen = getattr(request, "session", {}).get(SESSION_ORG_KEY)
    if chosen:
        picked = {org: role for org, role in cached.items() if str(org) == chosen}
        if picked:
            return picked
    return cached


def member_organizations(request: HttpRequest) -> list[tuple[str, str]]:
    """[(id, name)] of the user's organizations, for the switcher; cached on the request."""
    cached = getattr(request, "_member_orgs", None)
    if cached is None:
        cached = [
            (str(pk), name)
            for pk, name in Organization.objects.filter(memberships__user_id=request.user.pk)
            .order_by("name")
            .values_list("pk", "name")
        ]
        request._member_orgs = cached
    return cached


_REFUSALS = (ServiceError, UpgradeRequired, InvalidInput)


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


class TenantScopedAdmin(ConsoleAdmin):
    #: path from the model to its organization, for models that are not TenantModel
    organization_field: ClassVar[str] = "organization"
    #: roles allowed to add/change/delete; member-and-key models set this to owners/admins
    write_roles: ClassVar[set[str]] = _WRITE_ROLES

    def _is_operator(self, request: HttpRequest) -> bool:
        return is_operator(request)

    def _org_ids(self, request: HttpRequest, roles: set[str] | None = None) -> list[Any]:
        return [
            org for org, role in tenant_roles(request).items() if roles is None or role in roles
        ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        if self._is_operator(request):
            return qs
        return qs.filter(**{f"{self.organization_field}__in": self._org_ids(request)})

    def _allowed(self, request: HttpRequest, obj: Any, roles: set[str] | None) -> bool:
        if self._is_operator(request):
            return True
        # Members enter without Django's staff flag (apps.core.console.site lets them in);
        # what they reach is decided by their memberships alone.
        if not request.user.is_active:
            return False
        orgs = self._org_ids(request, roles)
        if obj is None:
            return bool(orgs)
        return self._org_of(obj) in orgs

    def _org_of(self, obj: Any) -> Any:
        if self.organization_field == "id":  # the Organization admin itself
            return obj.pk
        target = obj
        parts = self.organization_field.split("__")
        for part in parts[:-1]:
            target = getattr(target, part)
        return getattr(target, f"{parts[-1]}_id")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request, None, None)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request, obj, None)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request, None, self.write_roles)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request, obj, self.write_roles)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request, obj, self.write_roles)

    def has_operate_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._allowed(request, obj, self.write_roles)

    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts: Any, object_id: str):
        # Django's default redirects to the index with "doesn't exist"; we answer 404 as the
        # API does, whether the object is missing or belongs to another tenant.
        raise Http404

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict | None = None,
    ):
        # Django checks the change permission of a POST before it looks the object up, so a
        # forged POST to another tenant's id would answer 403 where a GET answers 404.
        if (
            object_id is not None
            and request.method == "POST"
            and not self._is_operator(request)
            and self.get_object(request, unquote(object_id)) is None
        ):
            raise Http404
        return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict | None = None):
        # Same ordering issue as above: the permission check comes before the lookup.
        if not self._is_operator(request) and self.get_object(request, unquote(object_id)) is None:
            raise Http404
        return super().delete_view(request, object_id, extra_context)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs: Any):
        # A tenant can only attach rows to organizations where they may write.
        if db_field.related_model is Organization and not self._is_operator(request):
            kwargs["queryset"] = Organization.objects.filter(
                pk__in=self._org_ids(request, self.write_roles)
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


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
