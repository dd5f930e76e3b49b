from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import TenantAPIView
from apps.core.schema import errors
from apps.plans import selectors
from apps.plans.api.serializers import PlanOutput, UsageOutput
from apps.tenants.api.views import ORG_HEADER


class PlanListView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        tags=["plans"],
        responses={200: PlanOutput(many=True)},
        summary="Public price list: plans with their features, limits and SLA targets",
    )
    def get(self, request: Request) -> Response:
        return Response(PlanOutput(selectors.plan_list(), many=True).data)


class UsageView(TenantAPIView):
    @extend_schema(
        tags=["plans"],
        parameters=[ORG_HEADER],
        responses={200: UsageOutput, **errors(401, 403, 404, 429)},
        summary="This billing period's usage next to the plan's limits",
    )
    def get(self, request: Request) -> Response:
        return Response(UsageOutput(selectors.usage_report(org=self.organization)).data)
