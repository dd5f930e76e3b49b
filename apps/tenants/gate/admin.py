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

from collections.abc import Set
from typing import Any, ClassVar

from django.contrib.admin.utils import unquote
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from apps.core.admin import ConsoleAdmin, is_operator
from apps.tenants.models import Membership, Organization, Role

#: roles that may add, change and delete in the console (viewers only read)
WRITE_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.MEMBER})

#: the organization a member of several chose in the console's switcher (its id as text)
SESSION_ORG_KEY = "console_organization"


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


class TenantScopedAdmin(ConsoleAdmin):
    #: path from the model to its organization, for models that are not TenantModel
    organization_field: ClassVar[str] = "organization"
    #: roles allowed to add/change/delete; member-and-key models set this to owners/admins
    write_roles: ClassVar[Set[str]] = WRITE_ROLES

    def _is_operator(self, request: HttpRequest) -> bool:
        return is_operator(request)

    def _org_ids(self, request: HttpRequest, roles: Set[str] | None = None) -> list[Any]:
        return [
            org for org, role in tenant_roles(request).items() if roles is None or role in roles
        ]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        qs = super().get_queryset(request)
        if self._is_operator(request):
            return qs
        return qs.filter(**{f"{self.organization_field}__in": self._org_ids(request)})

    def _allowed(self, request: HttpRequest, obj: Any, roles: Set[str] | None) -> bool:
        if self._is_operator(request):
            return True
        # Members enter without Django's staff flag (apps.console.site lets them in);
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
