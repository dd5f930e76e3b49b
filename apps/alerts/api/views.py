from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from apps.alerts import selectors
from apps.alerts.api.serializers import (
    ChannelCreatedOutput,
    ChannelInput,
    ChannelOutput,
    ChannelTestOutput,
    NotificationFilters,
    NotificationOutput,
    PolicyInput,
    PolicyOutput,
)
from apps.alerts.models import (
    Channel,
    EscalationPolicy,
    Notification,
    NotificationKind,
    NotificationStatus,
)
from apps.alerts.services import channels as channel_services
from apps.alerts.services import policies as policy_services
from apps.core.schema import AUTHENTICATED, errors
from apps.tenants.gate.api import ORG_HEADER, TenantViewSet

_READ = errors(401, 403, 404, 429)
_WRITE = errors(*AUTHENTICATED, 402, 429)


@extend_schema_view(
    list=extend_schema(responses={200: ChannelOutput(many=True), **_READ}),
    retrieve=extend_schema(responses={200: ChannelOutput, **_READ}),
    create=extend_schema(
        request=ChannelInput,
        responses={201: ChannelCreatedOutput, **_WRITE},
        summary="Create a channel; the response shows its secrets, once",
    ),
    partial_update=extend_schema(request=ChannelInput, responses={200: ChannelOutput, **_WRITE}),
    destroy=extend_schema(responses={204: None, **_READ}),
)
@extend_schema(tags=["alerts"], parameters=[ORG_HEADER])
class ChannelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    model = Channel
    serializer_class = ChannelOutput
    pagination_class = None  # a handful per organization
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def scoped_queryset(self, org):
        return selectors.channel_list(org=org)

    def create(self, request: Request) -> Response:
        data = ChannelInput(data=request.data)
        data.is_valid(raise_exception=True)
        channel, secrets = channel_services.channel_create(
            org=self.organization, **data.validated_data
        )
        body = ChannelCreatedOutput(channel, context={"secrets": secrets}).data
        return Response(body, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str) -> Response:
        channel = self.get_object()
        data = ChannelInput(data=request.data, partial=True, context={"channel": channel})
        data.is_valid(raise_exception=True)
        channel_services.channel_update(channel=channel, data=dict(data.validated_data))
        return Response(ChannelOutput(channel).data)

    def destroy(self, request: Request, pk: str) -> Response:
        channel_services.channel_delete(channel=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses={200: ChannelTestOutput, **errors(401, 402, 403, 404, 429)},
        summary="Send a test message now and report the outcome",
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str) -> Response:
        channel = self.get_object()
        n = channel_services.channel_test(channel=channel)
        attempt = n.attempt_rows.order_by("-number").first()
        return Response(
            {
                "ok": n.status == NotificationStatus.SENT,
                "status": n.status,
                "error": n.last_error,
                "permanent": bool(attempt and attempt.permanent),
                "duration_ms": attempt.duration_ms if attempt else 0,
                "details": attempt.details if attempt else {},
                "notification": str(n.pk),
            }
        )


@extend_schema_view(
    list=extend_schema(responses={200: PolicyOutput(many=True), **_READ}),
    retrieve=extend_schema(responses={200: PolicyOutput, **_READ}),
    create=extend_schema(request=PolicyInput, responses={201: PolicyOutput, **_WRITE}),
    partial_update=extend_schema(request=PolicyInput, responses={200: PolicyOutput, **_WRITE}),
    destroy=extend_schema(responses={204: None, **_READ}),
)
@extend_schema(tags=["alerts"], parameters=[ORG_HEADER])
class EscalationPolicyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    model = EscalationPolicy
    serializer_class = PolicyOutput
    pagination_class = None
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def scoped_queryset(self, org):
        return selectors.policy_list(org=org)

    def create(self, request: Request) -> Response:
        data = PolicyInput(data=request.data)
        data.is_valid(raise_exception=True)
        policy = policy_services.policy_create(org=self.organization, data=data.validated_data)
        return Response(self._out(policy.pk), status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str) -> Response:
        policy = self.get_object()
        data = PolicyInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        policy_services.policy_update(policy=policy, data=dict(data.validated_data))
        return Response(self._out(policy.pk))

    def destroy(self, request: Request, pk: str) -> Response:
        policy_services.policy_delete(policy=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _out(self, pk) -> dict:
        return PolicyOutput(selectors.policy_list(org=self.organization).get(pk=pk)).data


class NotificationCursor(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


_NOTIFICATION_FILTERS = [
    OpenApiParameter("status", str, enum=NotificationStatus.values),
    OpenApiParameter("kind", str, enum=NotificationKind.values),
    OpenApiParameter("channel", str, description="channel id"),
    OpenApiParameter("incident", str, description="incident id"),
    OpenApiParameter("since", str, description="created at or after (ISO 8601)"),
    OpenApiParameter("until", str, description="created before (ISO 8601)"),
]


@extend_schema_view(
    list=extend_schema(
        parameters=_NOTIFICATION_FILTERS,
        responses={200: NotificationOutput(many=True), **errors(400, 401, 403, 404, 429)},
        summary="The delivery log, newest first (cursor-paginated), with every attempt",
    ),
    retrieve=extend_schema(responses={200: NotificationOutput, **_READ}),
)
@extend_schema(tags=["alerts"], parameters=[ORG_HEADER])
class NotificationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    model = Notification
    serializer_class = NotificationOutput
    pagination_class = NotificationCursor

    def scoped_queryset(self, org):
        if self.action != "list":
            return selectors.notification_list(org=org)
        filters = NotificationFilters(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return selectors.notification_list(org=org, **filters.validated_data)


@extend_schema_view(test=extend_schema(exclude=True))
class ChannelTestAliasViewSet(ChannelViewSet):
    """`POST /api/v1/channels/{id}/test` without the slash; documented once, with it."""
