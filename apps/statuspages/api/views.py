"""Status page API: pages, sections, badges, and incident updates and postmortems.

Everything goes through the tenancy gate (apps.tenants.gate.api): another organization's page,
section, badge or incident is a 404; viewers and read keys may only read.
"""

from __future__ import annotations

import uuid

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.lists import FilteredListMixin
from apps.core.pagination import DefaultPagination
from apps.core.schema import AUTHENTICATED, crud_schema, errors
from apps.incidents.models import Incident
from apps.statuspages import selectors, services
from apps.statuspages.api import serializers as s
from apps.statuspages.api.filters import SectionFilter
from apps.statuspages.models import (
    Badge,
    IncidentUpdate,
    Postmortem,
    StatusPage,
    StatusPageSection,
)
from apps.tenants.gate.api import ORG_HEADER, TenantAPIView, TenantViewSet

_READ = errors(401, 403, 404, 429)
_WRITE = errors(*AUTHENTICATED, 429)


@crud_schema(
    s.PageOutput, s.PageInput, write=(*AUTHENTICATED, 402, 429), delete=(*AUTHENTICATED, 429)
)
@extend_schema(tags=["status pages"], parameters=[ORG_HEADER])
class StatusPageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    model = StatusPage
    serializer_class = s.PageOutput
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def scoped_queryset(self, org):
        return selectors.page_list(org=org)

    def create(self, request: Request) -> Response:
        data = self.validated(s.PageInput)
        page = services.status_page_create(org=self.organization, data=dict(data))
        return Response(s.PageOutput(page).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str) -> Response:
        page = self.get_object()
        data = self.validated(s.PageInput, partial=True)
        page = services.status_page_update(page=page, data=dict(data))
        return Response(s.PageOutput(page).data)

    def destroy(self, request: Request, pk: str) -> Response:
        services.status_page_delete(page=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


class SectionPages(DefaultPagination):
    """Numbered pages; `?page=<a status page's id>`, the filter's name before it became
    `status_page`, is still taken as the filter (and as the first page), so older clients
    keep working."""

    def get_page_number(self, request, paginator):
        if _uuid(request.query_params.get(self.page_query_param)):
            return 1
        return super().get_page_number(request, paginator)


@crud_schema(
    s.SectionOutput,
    s.SectionInput,
    update_request=s.SectionUpdateInput,
    delete=(*AUTHENTICATED, 429),
)
@extend_schema(tags=["status pages"], parameters=[ORG_HEADER])
class SectionViewSet(
    FilteredListMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet
):
    model = StatusPageSection
    serializer_class = s.SectionOutput
    filterset_class = SectionFilter
    pagination_class = SectionPages
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def scoped_queryset(self, org):
        return selectors.section_list(org=org)

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        legacy = _uuid(self.request.query_params.get("page")) if self.action == "list" else None
        return queryset.filter(page_id=legacy) if legacy else queryset

    def _out(self, section: StatusPageSection) -> dict:
        return s.SectionOutput(
            selectors.section_list(org=self.organization).get(pk=section.pk)
        ).data

    def create(self, request: Request) -> Response:
        data = self.validated(s.SectionInput)
        section = services.section_create(org=self.organization, data=dict(data))
        return Response(self._out(section), status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str) -> Response:
        section = self.get_object()
        data = self.validated(s.SectionUpdateInput, partial=True)
        section = services.section_update(section=section, data=dict(data))
        return Response(self._out(section))

    def destroy(self, request: Request, pk: str) -> Response:
        services.section_delete(section=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@crud_schema(s.BadgeOutput, s.BadgeInput, delete=(*AUTHENTICATED, 429), update=False)
@extend_schema(tags=["status pages"], parameters=[ORG_HEADER])
class BadgeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    model = Badge
    serializer_class = s.BadgeOutput
    http_method_names = ["get", "post", "delete", "head", "options"]

    def scoped_queryset(self, org):
        return selectors.badge_list(org=org)

    def create(self, request: Request) -> Response:
        data = self.validated(s.BadgeInput)
        badge = services.badge_create(org=self.organization, monitor_id=data["monitor"])
        return Response(s.BadgeOutput(badge).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, pk: str) -> Response:
        services.badge_delete(badge=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class _IncidentScoped(TenantAPIView):
    model = Incident

    def incident(self, incident_id) -> Incident:
        from django.shortcuts import get_object_or_404

        return get_object_or_404(self.get_queryset(), pk=incident_id)


@extend_schema(tags=["incidents"], parameters=[ORG_HEADER])
class IncidentUpdatesView(_IncidentScoped):
    @extend_schema(responses={200: s.UpdateOutput(many=True), **_READ})
    def get(self, request: Request, incident_id) -> Response:
        incident = self.incident(incident_id)
        updates = IncidentUpdate.objects.filter(incident=incident).order_by("-posted_at")
        return Response(s.UpdateOutput(updates, many=True).data)

    @extend_schema(
        request=s.UpdateInput,
        responses={201: s.UpdateOutput, **_WRITE},
        summary="Publish an update (investigating, identified, monitoring, resolved)",
    )
    def post(self, request: Request, incident_id) -> Response:
        incident = self.incident(incident_id)
        data = self.validated(s.UpdateInput)
        update = services.incident_update_post(incident=incident, **self.acting, **data)
        return Response(s.UpdateOutput(update).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["incidents"], parameters=[ORG_HEADER])
class PostmortemView(_IncidentScoped):
    @extend_schema(responses={200: s.PostmortemOutput, **_READ})
    def get(self, request: Request, incident_id) -> Response:
        incident = self.incident(incident_id)
        postmortem = Postmortem.objects.filter(incident=incident).first()
        if postmortem is None:
            from django.http import Http404

            raise Http404
        return Response(s.PostmortemOutput(postmortem).data)

    @extend_schema(
        request=s.PostmortemInput,
        responses={200: s.PostmortemOutput, **_WRITE},
        summary="Write or replace the incident's postmortem",
    )
    def put(self, request: Request, incident_id) -> Response:
        incident = self.incident(incident_id)
        data = self.validated(s.PostmortemInput)
        postmortem = services.postmortem_set(incident=incident, **self.acting, **data)
        return Response(s.PostmortemOutput(postmortem).data)

    post = put
