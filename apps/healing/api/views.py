from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.lists import FilteredListMixin, cursor, list_schema
from apps.core.schema import AUTHENTICATED, crud_schema, errors
from apps.healing import rootcause, selectors, services
from apps.healing.api.filters import HealingAttemptFilter
from apps.healing.api.serializers import (
    HealingAttemptOutput,
    HealingPolicyCreatedOutput,
    HealingPolicyInput,
    HealingPolicyOutput,
    RootCauseOutput,
)
from apps.healing.models import HealingAttempt, HealingPolicy
from apps.incidents.models import Incident
from apps.tenants.gate.api import ORG_HEADER, TenantAPIView, TenantViewSet

_READ = errors(401, 403, 404, 429)


@crud_schema(
    HealingPolicyOutput,
    HealingPolicyInput,
    created=HealingPolicyCreatedOutput,
    create_summary="Create a healing policy; the response shows the action's secrets, once",
    write=(*AUTHENTICATED, 402, 429),
)
@extend_schema(tags=["healing"], parameters=[ORG_HEADER])
class HealingPolicyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    model = HealingPolicy
    serializer_class = HealingPolicyOutput
    pagination_class = None  # a handful per organization
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def scoped_queryset(self, org):
        return selectors.policy_list(org=org)

    def create(self, request: Request) -> Response:
        data = HealingPolicyInput(data=request.data, context={"org": self.organization})
        data.is_valid(raise_exception=True)
        policy, secrets = services.policy_create(org=self.organization, data=data.validated_data)
        body = HealingPolicyCreatedOutput(policy, context={"secrets": secrets}).data
        return Response(body, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str) -> Response:
        policy = self.get_object()
        data = HealingPolicyInput(
            data=request.data, partial=True, context={"org": self.organization}
        )
        data.is_valid(raise_exception=True)
        services.policy_update(policy=policy, data=dict(data.validated_data))
        return Response(HealingPolicyOutput(policy).data)

    def destroy(self, request: Request, pk: str) -> Response:
        services.policy_delete(policy=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@list_schema(
    HealingAttemptOutput,
    summary="Every healing decision and attempt, newest first (cursor-paginated)",
    filterset=HealingAttemptFilter,
)
@extend_schema(tags=["healing"], parameters=[ORG_HEADER])
class HealingAttemptViewSet(
    FilteredListMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet
):
    model = HealingAttempt
    serializer_class = HealingAttemptOutput
    pagination_class = cursor("-created_at", "-id")
    filterset_class = HealingAttemptFilter

    def scoped_queryset(self, org):
        return selectors.attempt_list(org=org)


def _incident(view: TenantAPIView, pk) -> Incident:
    from django.http import Http404

    incident = (
        Incident.objects.for_org(view.organization)
        .select_related("monitor", "organization")
        .filter(pk=pk)
        .first()
    )
    if incident is None:
        raise Http404
    return incident


@extend_schema(tags=["healing"], parameters=[ORG_HEADER])
class IncidentHealView(TenantAPIView):
    @extend_schema(
        request=None,
        responses={202: HealingAttemptOutput, **errors(400, 401, 403, 404, 409, 429)},
        summary="Run healing on the incident now (the pending suggestion, or a new decision)",
    )
    def post(self, request: Request, pk) -> Response:
        incident = _incident(self, pk)
        attempt = services.heal_request(
            incident=incident, user=self.tenancy.user, api_key=self.tenancy.api_key
        )
        return Response(HealingAttemptOutput(attempt).data, status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["healing"], parameters=[ORG_HEADER])
class IncidentRootCauseView(TenantAPIView):
    @extend_schema(
        responses={200: RootCauseOutput, **_READ},
        summary="What changed just before the incident, ranked with evidence",
    )
    def get(self, request: Request, pk) -> Response:
        incident = _incident(self, pk)
        return Response(RootCauseOutput(rootcause.analyse(incident=incident)).data)
