from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from apps.core.admin import ReadOnlyAdminMixin
from apps.plans.models import PlanChange, UsageCounter
from apps.tenants import services
from apps.tenants.gate.admin import TenantScopedAdmin
from apps.tenants.models import ApiKey, ApiKeyScope, Invitation, Membership, Organization, Role

_MANAGE = {Role.OWNER, Role.ADMIN}


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ["user", "role", "created_at"]
    readonly_fields = ["user", "role", "created_at"]
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Organization)
class OrganizationAdmin(TenantScopedAdmin):
    organization_field = "id"
    write_roles = _MANAGE
    list_display = ["name", "slug", "plan", "member_count", "created_at"]
    ordering = ["name"]  # also orders the autocomplete's pages
    list_filter = ["plan"]
    search_fields = ["name", "slug", "billing_email"]
    readonly_fields = ["id", "usage", "created_at", "updated_at"]
    inlines = [MembershipInline]

    @admin.display(description="usage this period")
    def usage(self, obj: Organization) -> str:
        from django.utils.html import format_html_join

        from apps.plans.selectors import usage_report

        if obj._state.adding:  # UUID keys exist before the first save
            return "-"
        report = usage_report(org=obj)
        return format_html_join(
            ", ",
            "{}: {} / {}",
            (
                (name, item["used"], "∞" if item["limit"] is None else item["limit"])
                for name, item in report["usage"].items()
            ),
        )

    def save_model(self, request: HttpRequest, obj: Organization, form, change: bool) -> None:
        from apps.plans.services import organization_change_plan

        if change and "require_mfa" in form.changed_data:
            # Requiring a second factor is a plan feature: the service checks it.
            wanted = obj.require_mfa
            obj.require_mfa = form.initial["require_mfa"]
            services.organization_require_mfa(org=obj, required=wanted)
        new_plan = obj.plan_id
        if change and "plan" in form.changed_data:
            # Plan changes go through the service: downgrade rules apply and it is recorded.
            obj.plan_id = form.initial["plan"]
            super().save_model(request, obj, form, change)
            organization_change_plan(
                org=obj,
                plan_code=new_plan,
                source="admin",
                actor=request.user,
                reason="changed by an operator in the console",
            )
            return
        super().save_model(request, obj, form, change)

    actions = ["comp_plan"]

    @admin.action(description="Comp a plan (free for a while)", permissions=["comp"])
    def comp_plan(self, request: HttpRequest, queryset: QuerySet[Organization]):
        from django.http import HttpResponseRedirect
        from django.urls import reverse

        # The comp form is the confirmation: plan, reason and expiry are asked there.
        orgs = list(queryset[:2])
        if len(orgs) != 1:
            return self.nothing_to_do(request, "Select exactly one organization to comp.")
        url = reverse("admin:billing_plancomp_add")
        return HttpResponseRedirect(f"{url}?organization={orgs[0].pk}")

    def has_comp_permission(self, request: HttpRequest) -> bool:
        return self._is_operator(request)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        from django.db.models import Count

        return super().get_queryset(request).annotate(_members=Count("memberships"))

    @admin.display(description="members", ordering="_members")
    def member_count(self, obj: Organization) -> int:
        return obj._members

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        if not self._is_operator(request):
            fields.append("plan")  # tenants change plans through billing, not the console
        return fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._is_operator(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._is_operator(request)


class MembershipForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["organization", "user", "role"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        instance = self.instance
        if (
            not instance._state.adding
            and instance.role == Role.OWNER
            and cleaned.get("role") != Role.OWNER
        ):
            others = Membership.objects.filter(
                organization_id=instance.organization_id, role=Role.OWNER
            ).exclude(pk=instance.pk)
            if not others.exists():
                raise forms.ValidationError("An organization must keep at least one owner.")
        org = cleaned.get("organization")
        if instance._state.adding and org is not None:
            from apps.plans.models import Limit
            from apps.plans.selectors import entitlements_for

            cap = entitlements_for(org).limit(Limit.MEMBERS)
            if cap is not None and Membership.objects.filter(organization=org).count() >= cap:
                raise forms.ValidationError(
                    f"The {org.plan_id} plan allows {cap} members; upgrade or remove one first."
                )
        return cleaned


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    form = MembershipForm
    write_roles = _MANAGE
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__email", "organization__name", "organization__slug"]
    list_select_related = ["user", "organization"]
    raw_id_fields = ["user"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["organization", "user"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Membership, form, change: bool) -> None:
        if not change:
            # The form said there was room; the service's locked reservation settles a race.
            made = services.member_add(
                org=obj.organization,
                email=obj.user.email,
                role=obj.role,
                actor_role=self._actor_role(request, obj),
            )
            obj.pk = made.pk
            obj._state.adding = False
            return
        if "role" in form.changed_data:
            services.member_change_role(
                membership=Membership.objects.get(pk=obj.pk),
                role=obj.role,
                actor_role=self._actor_role(request, obj),
            )
        else:
            super().save_model(request, obj, form, change)

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        services.member_remove(
            membership=obj,
            actor_role=self._actor_role(request, obj),
            actor_is_self=obj.user_id == request.user.pk,
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset.select_related("user"):
            self.delete_model(request, membership)

    def _actor_role(self, request: HttpRequest, obj: Membership) -> str:
        if self._is_operator(request):
            return Role.OWNER
        return (
            Membership.objects.filter(organization_id=obj.organization_id, user=request.user)
            .values_list("role", flat=True)
            .first()
            or Role.VIEWER
        )


class ApiKeyCreateForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiKeyScope.choices, widget=forms.CheckboxSelectMultiple, initial=["read"]
    )

    class Meta:
        model = ApiKey
        fields = ["organization", "name", "scopes", "expires_at"]


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    write_roles = _MANAGE
    list_display = [
        "name",
        "prefix",
        "organization",
        "scopes",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "created_at"]
    search_fields = ["name", "prefix", "organization__slug"]
    list_select_related = ["organization", "created_by"]
    fields = [
        "name",
        "prefix",
        "organization",
        "scopes",
        "created_by",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    # On a key's own page only its name and expiry change.
    readonly_fields = [f for f in fields if f not in ("name", "expires_at")]
    actions = ["revoke"]

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any):
        if obj is None:
            kwargs["form"] = ApiKeyCreateForm
            kwargs["fields"] = ApiKeyCreateForm.Meta.fields
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ApiKeyCreateForm.Meta.fields if obj is None else self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [] if obj is None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        if change:
            if form.changed_data:  # an unchanged form changes (and records) nothing
                services.api_key_update(
                    api_key=ApiKey.objects.get(pk=obj.pk),
                    **{f: form.cleaned_data[f] for f in form.changed_data},
                )
            return
        issued = services.api_key_create(
            org=form.cleaned_data["organization"],
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            created_by=request.user,
            expires_at=form.cleaned_data.get("expires_at"),
        )
        obj.pk = issued.api_key.pk
        obj._state.adding = False
        messages.warning(
            request,
            f"Copy the new key now; it will not be shown again: {issued.secret}",
        )

    def delete_model(self, request: HttpRequest, obj: ApiKey) -> None:
        services.api_key_delete(api_key=obj)

    @admin.action(description="Revoke selected API keys", permissions=["operate"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]):
        targets = self.operable(request, queryset.filter(revoked_at__isnull=True))
        return self.confirm_each(
            request,
            targets,
            action="revoke",
            question=f"Revoke {len(targets)} API key(s)? Requests with them fail from now on.",
            act=lambda key: services.api_key_revoke(api_key=key),
            done="Revoked {count} API key(s).",
            nothing="None of the selected keys is still valid.",
        )


# --- The organization's plan: usage counters and plan history, read-only -------------------


@admin.register(UsageCounter)
class UsageCounterAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ["organization", "period_start", "metric", "value", "updated_at"]
    list_filter = ["metric", "period_start"]
    search_fields = ["organization__slug"]
    list_select_related = ["organization"]


@admin.register(PlanChange)
class PlanChangeAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ["organization", "from_plan", "to_plan", "source", "actor", "created_at"]
    list_filter = ["to_plan", "source"]
    search_fields = ["organization__slug", "reason", "source"]
    list_select_related = ["organization", "actor"]
    # The page shows every field read-only (the mixin); the timestamp, not editable, is named.
    readonly_fields = ["created_at"]


class InvitationForm(forms.ModelForm):
    class Meta:
        model = Invitation
        fields = ["organization", "email", "role"]


@admin.register(Invitation)
class InvitationAdmin(TenantScopedAdmin):
    """Invite by email: the link goes out through the site's mail. Invitations are sent or
    revoked, never edited."""

    form = InvitationForm
    write_roles = _MANAGE
    list_display = ["email", "organization", "role", "state", "expires_at", "created_at"]
    list_filter = ["role"]
    search_fields = ["email", "organization__slug"]
    list_select_related = ["organization"]
    actions = ["revoke"]

    @admin.display(description="state")
    def state(self, obj: Invitation) -> str:
        return obj.state

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return []
        return ["organization", "email", "role", "state", "expires_at", "accepted_at"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return ["organization", "email", "role"]
        return self.get_readonly_fields(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: Invitation, form, change: bool) -> None:
        actor_role = (
            Role.OWNER
            if self._is_operator(request)
            else Membership.objects.filter(organization_id=obj.organization_id, user=request.user)
            .values_list("role", flat=True)
            .first()
            or Role.VIEWER
        )
        issued = services.invitation_create(
            org=obj.organization,
            email=obj.email,
            role=obj.role,
            actor_role=actor_role,
            invited_by=request.user,
            base_url=request.build_absolute_uri("/"),
        )
        obj.pk = issued.invitation.pk
        obj._state.adding = False

    @admin.action(description="Revoke the selected invitations", permissions=["change_invite"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        if not self._is_operator(request):
            queryset = queryset.filter(organization_id__in=self._org_ids(request, self.write_roles))
        for invitation in queryset:
            services.invitation_revoke(invitation=invitation)
        self.message_user(request, "Revoked.", messages.SUCCESS)

    def has_change_invite_permission(self, request: HttpRequest) -> bool:
        return bool(self._org_ids(request, self.write_roles)) or self._is_operator(request)
