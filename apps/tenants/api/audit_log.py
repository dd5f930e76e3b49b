"""The organization's audit log: read-only, newest first, behind the plan's audit_logs feature."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request

from apps.audit import selectors
from apps.audit.models import AuditEntry
from apps.core.schema import errors
from apps.plans.services import require_feature
from apps.tenants.api.audit_log_serializers import AuditEntryOutput, AuditFilters
from apps.tenants.gate.api import ORG_HEADER, TenantViewSet


class AuditCursor(CursorPagination):
    ordering = ("-at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


_FILTERS = [
    OpenApiParameter("actor", str, description="actor kind, user id, key id, email or key label"),
    OpenApiParameter("object_type", str, description="monitor, channel, healingpolicy, ..."),
    OpenApiParameter("object_id", str),
    OpenApiParameter("action", str, description="e.g. monitor.updated"),
    OpenApiParameter("since", str, description="at or after (ISO 8601)"),
    OpenApiParameter("until", str, description="before (ISO 8601)"),
]
_READ = errors(401, 402, 403, 404, 429)


@extend_schema_view(
    list=extend_schema(
        parameters=_FILTERS,
        responses={200: AuditEntryOutput(many=True), **errors(400, 401, 402, 403, 404, 429)},
        summary="The audit log, newest first (cursor-paginated); needs the audit_logs feature",
    ),
    retrieve=extend_schema(responses={200: AuditEntryOutput, **_READ}),
)
@extend_schema(tags=["audit"], parameters=[ORG_HEADER])
class AuditLogViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    """Read-only by construction: no create, update or delete routes exist."""

    model = AuditEntry
    serializer_class = AuditEntryOutput
    pagination_class = AuditCursor

    def initial(self, request: Request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        # Recording happens on every plan; reading it is the paid part.
        require_feature(org=self.organization, feature="audit_logs")

    def scoped_queryset(self, org):
        if self.action != "list":
            return selectors.audit_list(org=org)
        filters = AuditFilters(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.audit_list(org=org, **filters.validated_data)
