from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.alerts import selectors
from apps.alerts.api.filters import NotificationFilter
from apps.alerts.api.serializers import (
    ChannelCreatedOutput,
    ChannelInput,
    ChannelOutput,
    ChannelTestOutput,
    NotificationOutput,
    PolicyInput,
    PolicyOutput,
)
from apps.alerts.models import (
    Channel,
    EscalationPolicy,
    Notification,
    NotificationStatus,
)
from apps.alerts.services import channels as channel_services
from apps.alerts.services import policies as policy_services
from apps.core.lists import FilteredListMixin, cursor, list_schema
from apps.core.schema import AUTHENTICATED, crud_schema, errors
from apps.tenants.gate.api import ORG_HEADER, TenantViewSet

_WRITE = (*AUTHENTICATED, 402, 429)


@crud_schema(
    ChannelOutput,
    ChannelInput,
    created=ChannelCreatedOutput,
    create_summary="Create a channel; the response shows its secrets, once",
    write=_WRITE,
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
        data = self.validated(ChannelInput)
        channel, secrets = channel_services.channel_create(org=self.organization, **data)
        body = ChannelCreatedOutput(channel, context={"secrets": secrets}).data
        return Response(body, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str) -> Response:
        channel = self.get_object()
        data = self.validated(ChannelInput, partial=True, context={"channel": channel})
        channel_services.channel_update(channel=channel, data=dict(data))
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


@crud_schema(PolicyOutput, PolicyInput, write=_WRITE)
@extend_schema(tags=["alerts"], parameters=[ORG_HEADER])
class EscalationPolicyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    model = EscalationPolicy
    serializer_class = PolicyOutput
    pagination_class = None
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def scoped_queryset(self, org):
        return selectors.policy_list(org=org)

    def create(self, request: Request) -> Response:
        data = self.validated(PolicyInput)
        policy = policy_services.policy_create(org=self.organization, data=data)
        return Response(self._out(policy.pk), status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str) -> Response:
        policy = self.get_object()
        data = self.validated(PolicyInput, partial=True)
        policy_services.policy_update(policy=policy, data=dict(data))
        return Response(self._out(policy.pk))

    def destroy(self, request: Request, pk: str) -> Response:
        policy_services.policy_delete(policy=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _out(self, pk) -> dict:
        return PolicyOutput(selectors.policy_list(org=self.organization).get(pk=pk)).data


@list_schema(
    NotificationOutput,
    summary="The delivery log, newest first (cursor-paginated), with every attempt",
    filterset=NotificationFilter,
)
@extend_schema(tags=["alerts"], parameters=[ORG_HEADER])
class NotificationViewSet(
    FilteredListMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet
):
    model = Notification
    serializer_class = NotificationOutput
    pagination_class = cursor("-created_at", "-id")
    filterset_class = NotificationFilter

    def scoped_queryset(self, org):
        return selectors.notification_list(org=org)


@extend_schema_view(test=extend_schema(exclude=True))
class ChannelTestAliasViewSet(ChannelViewSet):
    """`POST /api/v1/channels/{id}/test` without the slash; documented once, with it."""
