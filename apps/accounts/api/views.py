"""The organization's single sign-on: read, set, remove (owners and admins)."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts import selectors, services
from apps.core.api import StrictBooleanField, StrictSerializer
from apps.core.schema import AUTHENTICATED, errors
from apps.tenants.gate.api import ORG_HEADER, TenantAPIView
from apps.tenants.selectors import Access


class SingleSignOnInput(StrictSerializer):
    issuer = serializers.URLField(max_length=500)
    client_id = serializers.CharField(max_length=255)
    client_secret = serializers.CharField(
        max_length=1000, required=False, allow_blank=True, write_only=True
    )
    domain = serializers.CharField(max_length=253)
    enabled = StrictBooleanField(required=False, default=True)


class SingleSignOnOutput(serializers.Serializer):
    issuer = serializers.URLField()
    client_id = serializers.CharField()
    domain = serializers.CharField()
    domain_verified = serializers.BooleanField()
    enabled = serializers.BooleanField()
    callback_url = serializers.CharField(help_text="Register this redirect URI at the provider")


@extend_schema(tags=["organization"], parameters=[ORG_HEADER])
class SingleSignOnView(TenantAPIView):
    read_access = Access.MANAGE
    write_access = Access.MANAGE

    @extend_schema(responses={200: SingleSignOnOutput, **errors(401, 403, 404)})
    def get(self, request: Request) -> Response:
        sso = selectors.sso_of(org=self.organization)
        if sso is None:
            raise NotFound("No single sign-on is set up.")
        return Response(self._out(request, sso))

    @extend_schema(
        request=SingleSignOnInput,
        responses={200: SingleSignOnOutput, **errors(*AUTHENTICATED, 402)},
        summary="Set the OpenID Connect provider and email domain (plan feature sso)",
    )
    def put(self, request: Request) -> Response:
        data = SingleSignOnInput(data=request.data)
        data.is_valid(raise_exception=True)
        sso = services.sso_configure(org=self.organization, **data.validated_data)
        return Response(self._out(request, sso))

    @extend_schema(responses={204: None, **errors(401, 403, 404)})
    def delete(self, request: Request) -> Response:
        services.sso_remove(org=self.organization)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _out(self, request: Request, sso) -> dict:
        callback = reverse("openid_connect_callback", kwargs={"provider_id": sso.provider_id})
        return SingleSignOnOutput(
            {
                "issuer": sso.issuer,
                "client_id": sso.client_id,
                "domain": sso.domain,
                "domain_verified": sso.domain_verified_at is not None,
                "enabled": sso.enabled,
                "callback_url": request.build_absolute_uri(callback),
            }
        ).data
