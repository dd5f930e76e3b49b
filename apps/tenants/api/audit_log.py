"""The organization's audit log: read-only, newest first, behind the plan's audit_logs feature."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins
from rest_framework.request import Request

from apps.audit import selectors
from apps.audit.models import AuditEntry
from apps.core.lists import FilteredListMixin, cursor, list_schema
from apps.plans.services import require_feature
from apps.tenants.api.audit_log_filters import AuditFilter
from apps.tenants.api.audit_log_serializers import AuditEntryOutput
from apps.tenants.gate.api import ORG_HEADER, TenantViewSet


@list_schema(
    AuditEntryOutput,
    summary="The audit log, newest first (cursor-paginated); needs the audit_logs feature",
    filterset=AuditFilter,
    read_errors=(401, 402, 403, 404, 429),
)
@extend_schema(tags=["audit"], parameters=[ORG_HEADER])
class AuditLogViewSet(
    FilteredListMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet
):
    """Read-only by construction: no create, update or delete routes exist."""

    model = AuditEntry
    serializer_class = AuditEntryOutput
    pagination_class = cursor("-at", "-id")
    filterset_class = AuditFilter

    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        # Recording happens on every plan; reading it is the paid part.
        require_feature(org=self.organization, feature="audit_logs")

    def scoped_queryset(self, org):
        return selectors.audit_list(org=org)
