"""The audit log in the console: operators read everything, nobody changes anything."""

from __future__ import annotations

from django.contrib import admin

from apps.audit.models import AuditEntry
from apps.core.admin import OperatorOnlyAdmin, ReadOnlyAdminMixin


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, OperatorOnlyAdmin):
    # Operators only: tenants read their log through the API (behind the audit_logs feature).
    list_display = ["at", "organization", "actor_kind", "actor_label", "action", "object_repr"]
    list_filter = ["actor_kind", "object_type", "action"]
    search_fields = ["actor_label", "object_id", "object_repr", "request_id"]
    date_hierarchy = "at"
    list_select_related = ["organization"]
    readonly_fields = [f.name for f in AuditEntry._meta.fields]
