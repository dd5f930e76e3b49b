"""The console's status pages: pages and sections editable (through the services, so the plan
gate, slug check and cache clearing hold there too), communication and subscribers visible.
Everything is scoped by the one admin tenancy gate (apps.core.admin)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from apps.core.actors import actor_label
from apps.core.admin import ReadOnlyAdminMixin
from apps.core.errors import ServiceError, UpgradeRequired
from apps.monitors.models import Monitor
from apps.plans.models import Feature
from apps.plans.selectors import entitlements_for
from apps.statuspages import cache as page_cache
from apps.statuspages import services
from apps.statuspages.models import (
    Badge,
    IncidentUpdate,
    Postmortem,
    StatusPage,
    StatusPageMonitor,
    StatusPageSection,
    Subscriber,
)
from apps.tenants.gate.admin import TenantScopedAdmin

_PAGE_FIELDS = ["name", "slug", "description", "published", "private", "history_days"]


class _OwnRows:
    """Foreign keys offer only rows of organizations where the user may write."""

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs: Any):
        if db_field.related_model in (StatusPage, Monitor, StatusPageSection):
            qs = db_field.related_model.objects.all()
            if not (request.user.is_active and request.user.is_superuser):
                from apps.tenants.gate.admin import WRITE_ROLES, tenant_roles

                orgs = [o for o, role in tenant_roles(request).items() if role in WRITE_ROLES]
                qs = qs.filter(organization_id__in=orgs)
            kwargs["queryset"] = qs
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class StatusPageForm(forms.ModelForm):
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="For private pages. Leave empty to keep the current one.",
    )

    class Meta:
        model = StatusPage
        fields = ["organization", *_PAGE_FIELDS]

    def clean(self):
        data = super().clean()
        org = data.get("organization") or getattr(self.instance, "organization", None)
        publishing = data.get("published") and not (
            self.instance.pk
            and StatusPage.objects.filter(pk=self.instance.pk, published=True).exists()
        )
        if org is not None and (not self.instance.pk or publishing):
            ent = entitlements_for(org)
            if not ent.has(Feature.STATUS_PAGES):
                raise forms.ValidationError(
                    f"Upgrade Required: the {ent.plan_code} plan has no status pages."
                )
        return data


@admin.register(StatusPage)
class StatusPageAdmin(_OwnRows, TenantScopedAdmin):
    form = StatusPageForm
    list_display = ["name", "slug", "organization", "published", "private", "updated_at"]
    list_filter = ["published", "private"]
    search_fields = ["name", "slug"]
    readonly_fields = ["access_token"]

    def save_model(self, request: HttpRequest, obj: StatusPage, form: Any, change: bool) -> None:
        data = {k: form.cleaned_data[k] for k in _PAGE_FIELDS if k in form.cleaned_data}
        if form.cleaned_data.get("password"):
            data["password"] = form.cleaned_data["password"]
        try:
            if change:
                page = services.status_page_update(
                    page=StatusPage.objects.get(pk=obj.pk), data=data
                )
            else:
                page = services.status_page_create(org=obj.organization, data=data)
        except (ServiceError, UpgradeRequired) as exc:  # raced past the form's check
            raise forms.ValidationError(str(exc)) from exc
        obj.pk, obj.access_token, obj.password_hash = page.pk, page.access_token, page.password_hash
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: StatusPage) -> None:
        services.status_page_delete(page=obj)


class ItemInline(_OwnRows, admin.TabularInline):
    model = StatusPageMonitor
    fields = ["monitor", "display_name", "position"]
    extra = 1


class SectionForm(forms.ModelForm):
    class Meta:
        model = StatusPageSection
        fields = ["organization", "page", "name", "position"]

    def clean(self):
        data = super().clean()
        org, page = data.get("organization"), data.get("page")
        if org is not None and page is not None and page.organization_id != org.pk:
            raise forms.ValidationError("The page belongs to another organization.")
        return data


@admin.register(StatusPageSection)
class SectionAdmin(_OwnRows, TenantScopedAdmin):
    form = SectionForm
    list_display = ["name", "page", "position", "organization"]
    list_select_related = ["page", "organization"]
    fields = ["organization", "page", "name", "position"]
    inlines = [ItemInline]

    def save_formset(self, request, form, formset, change):
        # Inline rows carry their section's organization (the tenancy key of every row).
        for item in formset.save(commit=False):
            item.organization_id = form.instance.organization_id
            item.save()
        for item in formset.deleted_objects:
            item.delete()

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        page_cache.forget_slugs([form.instance.page.slug])

    def delete_model(self, request: HttpRequest, obj: StatusPageSection) -> None:
        services.section_delete(section=obj)


@admin.display(description="author")
def author_actor(obj: IncidentUpdate | Postmortem) -> str:
    """The user or API key who wrote it."""
    return actor_label(obj.author, obj.author_key, system="-")


@admin.register(IncidentUpdate)
class IncidentUpdateAdmin(TenantScopedAdmin):
    """Updates are published through the API (which emails subscribers); here they are read."""

    list_display = ["incident", "status", "posted_at", author_actor, "recipients", "organization"]
    list_filter = ["status"]
    list_select_related = ["incident", "author", "organization"]
    exclude = ["author"]
    readonly_fields = [
        *(f.name for f in IncidentUpdate._meta.fields if f.name not in ("author", "author_key")),
        author_actor,
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Postmortem)
class PostmortemAdmin(TenantScopedAdmin):
    list_display = ["incident", "published", "updated_at", "organization"]
    list_select_related = ["incident", "organization"]
    exclude = ["author"]
    readonly_fields = ["incident", "organization", author_actor]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Postmortem, form: Any, change: bool) -> None:
        services.postmortem_set(
            incident=obj.incident, body=obj.body, published=obj.published, user=request.user
        )


@admin.register(Subscriber)
class SubscriberAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ["email", "page", "confirmed_at", "unsubscribed_at", "organization"]
    list_filter = ["page"]
    list_select_related = ["page", "organization"]
    search_fields = ["email"]
    readonly_fields = ["page", "email", "confirmed_at", "unsubscribed_at", "organization"]
    fields = readonly_fields
    delete_by = "base"


@admin.register(Badge)
class BadgeAdmin(_OwnRows, TenantScopedAdmin):
    list_display = ["monitor", "token", "organization", "created_at"]
    list_select_related = ["monitor", "organization"]
    readonly_fields = ["token"]
    fields = ["organization", "monitor", "token"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Badge, form: Any, change: bool) -> None:
        badge = services.badge_create(org=obj.organization, monitor_id=obj.monitor_id)
        obj.pk, obj.token = badge.pk, badge.token
        obj._state.adding = False
