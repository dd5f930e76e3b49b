"""Upgrade (Checkout), the Billing Portal and the billing overview. Thin: parse, call, serialize."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.billing import gateway, selectors, services
from apps.billing.api.serializers import BillingOutput, PortalOutput, UpgradeInput, UpgradeOutput
from apps.core.schema import errors
from apps.tenants.gate.api import ORG_HEADER, TenantAPIView
from apps.tenants.selectors import Access


class _Paying(TenantAPIView):
    """Spending the organization's money: owners and admins, or a write-scoped API key (keys
    are minted by owners and admins only)."""

    def required_access(self, request: Request) -> Access:
        return Access.WRITE if request.tenancy.api_key is not None else Access.MANAGE


class UpgradeView(_Paying):
    @extend_schema(
        tags=["billing"],
        parameters=[ORG_HEADER],
        request=UpgradeInput,
        responses={200: UpgradeOutput, **errors(400, 401, 403, 404, 409, 429, 503)},
        summary="Start a Stripe Checkout for a paid plan; redirect the user to checkout_url",
    )
    def post(self, request: Request) -> Response:
        gateway.require_configured()
        data = UpgradeInput(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.checkout_start(
            org=self.organization, plan_code=data.validated_data["plan"]
        )
        return Response(UpgradeOutput(result).data)


class PortalView(_Paying):
    @extend_schema(
        tags=["billing"],
        parameters=[ORG_HEADER],
        request=None,
        responses={200: PortalOutput, **errors(401, 403, 404, 429, 503)},
        summary="A Stripe Billing Portal link to manage payment or cancel",
    )
    def post(self, request: Request) -> Response:
        return Response(PortalOutput(services.portal_open(org=self.organization)).data)


class BillingView(TenantAPIView):
    @extend_schema(
        tags=["billing"],
        parameters=[ORG_HEADER],
        responses={200: BillingOutput, **errors(401, 403, 404, 429, 503)},
        summary="Plan, subscription status, current period end, cancel-at-period-end",
    )
    def get(self, request: Request) -> Response:
        gateway.require_configured()
        return Response(BillingOutput(selectors.billing_overview(org=self.organization)).data)
