"""The audit log in the console: operators read everything, nobody changes anything."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from apps.audit.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "organization", "actor_kind", "actor_label", "action", "object_repr"]
    list_filter = ["actor_kind", "object_type", "action"]
    search_fields = ["actor_label", "object_id", "object_repr", "request_id"]
    date_hierarchy = "at"
    list_select_related = ["organization"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    # Operators only: tenants read their log through the API (behind the audit_logs feature).
    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
