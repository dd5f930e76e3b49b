from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.lists import FilteredListMixin, apply_filters, cursor, cursor_page, filter_parameters
from apps.core.schema import AUTHENTICATED, crud_schema, errors
from apps.monitors import config_as_code, ingest, selectors, services
from apps.monitors.api.filters import MonitorFilter, ResultFilter
from apps.monitors.api.serializers import MonitorInput, MonitorOutput, ResultOutput
from apps.monitors.models import Monitor
from apps.tenants.gate.api import ORG_HEADER, TenantAPIView, TenantViewSet

ResultCursor = cursor("-checked_at", "-id", page_size=100, max_page_size=1000)


@crud_schema(
    MonitorOutput,
    MonitorInput,
    write=(*AUTHENTICATED, 402, 429),
    list_parameters=filter_parameters(MonitorFilter),
)
@extend_schema(tags=["monitors"], parameters=[ORG_HEADER])
class MonitorViewSet(
    FilteredListMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet
):
    model = Monitor
    serializer_class = MonitorOutput
    filterset_class = MonitorFilter
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def scoped_queryset(self, org):
        if self.action != "list":
            return super().scoped_queryset(org).select_related("schedule")
        return selectors.monitor_list(org=org)

    def create(self, request: Request) -> Response:
        data = MonitorInput(data=request.data)
        data.is_valid(raise_exception=True)
        monitor = services.monitor_create(org=self.organization, data=dict(data.validated_data))
        return Response(self._out(monitor), status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str) -> Response:
        monitor = self.get_object()
        data = MonitorInput(data=request.data, partial=True, context={"monitor": monitor})
        data.is_valid(raise_exception=True)
        services.monitor_update(monitor=monitor, data=dict(data.validated_data))
        return Response(self._out(monitor))

    def destroy(self, request: Request, pk: str) -> Response:
        services.monitor_delete(monitor=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: MonitorOutput, **errors(401, 403, 404, 429)})
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str) -> Response:
        return Response(self._out(services.monitor_pause(monitor=self.get_object())))

    @extend_schema(request=None, responses={200: MonitorOutput, **errors(401, 402, 403, 404, 429)})
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        return Response(self._out(services.monitor_resume(monitor=self.get_object())))

    @extend_schema(
        request=None,
        responses={200: ResultOutput, **errors(400, 401, 403, 404, 429)},
        summary="Run the check now and return its result",
    )
    @action(detail=True, methods=["post"])
    def check(self, request: Request, pk: str) -> Response:
        result = services.monitor_check_now(monitor=self.get_object())
        return Response(ResultOutput(result).data)

    @extend_schema(
        parameters=filter_parameters(ResultFilter),
        responses={200: ResultOutput(many=True), **errors(400, 401, 403, 404, 429)},
        summary="Check results, newest first (cursor-paginated)",
        filters=False,  # its own (ResultFilter), documented above; not the monitor list's
    )
    # The action's own page class: the schema shows cursor pages (no `count`), as answered.
    @action(detail=True, methods=["get"], pagination_class=ResultCursor)
    def results(self, request: Request, pk: str) -> Response:
        monitor = self.get_object()
        results = apply_filters(ResultFilter, request, selectors.result_list(monitor=monitor))
        return cursor_page(self, results, ResultCursor, ResultOutput)

    @extend_schema(
        request=inline_serializer(
            "MonitorDocument",
            {
                "version": serializers.IntegerField(),
                "monitors": serializers.ListField(child=serializers.DictField()),
            },
        ),
        parameters=[OpenApiParameter("prune", bool), OpenApiParameter("dry_run", bool)],
        responses={
            200: inline_serializer(
                "MonitorDocumentApplied",
                {
                    "created": serializers.ListField(child=serializers.SlugField()),
                    "updated": serializers.ListField(child=serializers.SlugField()),
                    "deleted": serializers.ListField(child=serializers.SlugField()),
                    "unchanged": serializers.ListField(child=serializers.SlugField()),
                    "dry_run": serializers.BooleanField(),
                },
            ),
            **errors(*AUTHENTICATED, 402, 429),
        },
        summary="Make the organization's monitors match a document (configuration as code)",
    )
    @action(detail=False, methods=["post"], url_path="apply")
    def apply(self, request: Request) -> Response:
        options = config_as_code.ApplyOptions(data=request.query_params)
        options.is_valid(raise_exception=True)
        applied = config_as_code.document_apply(
            self.organization, request.data, **options.validated_data
        )
        return Response(applied.as_dict())

    def _out(self, monitor: Monitor) -> dict:
        return MonitorOutput(monitor, context={"request": self.request}).data


class MetricsIngestView(TenantAPIView):
    @extend_schema(
        tags=["metrics"],
        parameters=[ORG_HEADER],
        request=inline_serializer(
            "MetricsIn",
            {
                "source": serializers.CharField(),
                "metrics": serializers.DictField(),
                "ts": serializers.DateTimeField(required=False),
            },
        ),
        responses={
            202: inline_serializer("MetricsAccepted", {"accepted": serializers.IntegerField()}),
            **errors(*AUTHENTICATED, 402, 429),
        },
        summary='Ingest one sample or {"samples": [...]} (up to 1,000); all or nothing',
    )
    def post(self, request: Request) -> Response:
        accepted = ingest.samples_ingest(org=self.organization, payload=request.data)
        return Response({"accepted": accepted}, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(apply=extend_schema(exclude=True))
class MonitorApplyAliasViewSet(MonitorViewSet):
    """`POST /api/v1/monitors/apply` without the slash; documented once, at `.../apply/`."""
