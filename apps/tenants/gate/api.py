"""The API's tenancy gate: one base for every organization-scoped endpoint.

A view declares the access it needs (`read_access`, `write_access`, or per action in
`action_access`); the base resolves the organization once per request, checks the caller's
role or key scope, and scopes querysets to that organization. Another tenant's object is
therefore never found: a 404, not a 403 that would confirm it exists. Past the gate, the plan's
per-minute request limit applies (429) and the request is metered.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db.models import Model, QuerySet
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.views import APIView
from rest_framework.viewsets import GenericViewSet

from apps.plans.metering import check_rate, count_api_request
from apps.plans.models import Limit
from apps.plans.selectors import entitlements_for
from apps.tenants.authentication import ApiKeyPrincipal
from apps.tenants.models import Membership, Organization
from apps.tenants.selectors import Access, Tenancy

#: the header a user in several organizations names one with (documented on every endpoint)
ORG_HEADER = OpenApiParameter(
    "X-Organization",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="Slug of the organization to act on, for users in several organizations.",
)


def tenancy_for_request(request: Request) -> Tenancy:
    """Resolve the organization for an authenticated request (at most one query).

    API keys belong to one organization. Users pick one of theirs with `X-Organization: <slug>`
    or get their oldest membership. An organization the caller does not belong to is a 404,
    so its existence is not revealed.
    """
    wanted = request.headers.get("X-Organization", "").strip() or None
    principal = request.user
    if isinstance(principal, ApiKeyPrincipal):
        key = principal.api_key
        if wanted is not None and wanted != key.organization.slug:
            raise exceptions.NotFound("Organization not found.")
        return Tenancy(organization=key.organization, api_key=key)

    memberships = Membership.objects.select_related("organization__plan").filter(user=principal)
    if wanted is not None:
        membership = memberships.filter(organization__slug=wanted).first()
        if membership is None:
            raise exceptions.NotFound("Organization not found.")
    else:
        membership = memberships.order_by("created_at").first()
        if membership is None:
            raise exceptions.PermissionDenied("You are not a member of any organization.")
    return Tenancy(organization=membership.organization, role=membership.role, user=principal)


def enforce_api_plan(tenancy: Tenancy) -> dict[str, str]:
    """The plan's per-minute rate limit, per API key or per (user, organization), counted in
    the cache every process shares (429 past it), and API-request metering."""
    org = tenancy.organization
    per_minute = entitlements_for(org).limit(Limit.API_REQUESTS_PER_MINUTE)
    if tenancy.api_key is not None:
        ident = f"key:{tenancy.api_key.pk}"
    else:
        ident = f"user:{tenancy.user.pk}:{org.pk}"
    headers = check_rate(ident=ident, per_minute=per_minute)
    count_api_request(org.pk)
    return headers


_DENIED = {
    Access.READ: "This API key or role cannot read this resource.",
    Access.WRITE: "Read-only access: this API key or role cannot make changes.",
    Access.MANAGE: "Only an organization owner or admin (signed in as a user) can do this.",
}


class TenantScopedMixin:
    read_access: ClassVar[Access] = Access.READ
    write_access: ClassVar[Access] = Access.WRITE
    action_access: ClassVar[dict[str, Access]] = {}
    model: ClassVar[type[Model] | None] = None

    request: Request

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication, IsAuthenticated, throttles
        tenancy = tenancy_for_request(request)
        request.tenancy = tenancy
        request._request.tenancy = tenancy  # for the access log
        needed = self.required_access(request)
        if not tenancy.allows(needed):
            raise exceptions.PermissionDenied(_DENIED[needed])
        self._rate_limit_headers = enforce_api_plan(tenancy)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any):
        response = super().finalize_response(request, response, *args, **kwargs)
        for header, value in getattr(self, "_rate_limit_headers", {}).items():
            response[header] = value
        return response

    def required_access(self, request: Request) -> Access:
        action = getattr(self, "action", None)
        if action in self.action_access:
            return self.action_access[action]
        return self.read_access if request.method in SAFE_METHODS else self.write_access

    @property
    def tenancy(self) -> Tenancy:
        return self.request.tenancy

    @property
    def organization(self) -> Organization:
        return self.request.tenancy.organization

    @property
    def acting(self) -> dict[str, Any]:
        """Who asks, the way write services take it: the signed-in user and the API key."""
        return {"user": self.request.tenancy.user, "api_key": self.request.tenancy.api_key}

    def validated(self, serializer_class: type, **kwargs: Any) -> dict[str, Any]:
        """The request body read by `serializer_class`; bad input raises the project's 400."""
        serializer = serializer_class(data=self.request.data, **kwargs)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def get_queryset(self) -> QuerySet:
        if self.model is None:
            raise NotImplementedError(f"{type(self).__name__} must set `model`")
        if getattr(self, "swagger_fake_view", False):  # schema generation: no request, no org
            return self.model.objects.none()
        return self.scoped_queryset(self.organization)

    def scoped_queryset(self, org: Organization) -> QuerySet:
        """The rows this view may touch; override to add joins, never to widen the scope."""
        return self.model.objects.for_org(org)


class TenantAPIView(TenantScopedMixin, APIView):
    pass


class TenantViewSet(TenantScopedMixin, GenericViewSet):
    lookup_value_converter = "uuid"
