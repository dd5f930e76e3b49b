from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.plans import selectors
from apps.plans.api.serializers import PlanOutput


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
