"""Auth, organization, members and API keys. Each view parses, calls one service, serializes."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.http import Http404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from apps.core.schema import AUTHENTICATED, errors
from apps.plans import selectors as plan_selectors
from apps.tenants import selectors, services, throttling
from apps.tenants.api import serializers as s
from apps.tenants.gate.api import ORG_HEADER, TenantAPIView, TenantViewSet
from apps.tenants.models import ApiKey, Invitation, Membership, Role
from apps.tenants.selectors import Access

User = get_user_model()


class _Public(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]


class RegisterView(_Public):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "register"

    @extend_schema(
        tags=["auth"],
        request=s.RegisterInput,
        responses={201: s.TokenOutput, **errors(400, 429)},
        summary="Create an account, its organization (free plan) and an owner token",
    )
    def post(self, request: Request) -> Response:
        data = s.RegisterInput(data=request.data)
        data.is_valid(raise_exception=True)
        org, token = services.user_register(
            email=data.validated_data["email"],
            password=data.validated_data["password"],
            organization_name=data.validated_data["organization"],
        )
        return Response({"token": token, "organization": org.slug}, status=status.HTTP_201_CREATED)


class LoginView(_Public):
    def get_authenticate_header(self, request: Request) -> str:
        # Wrong credentials are a 401, which must name a scheme: the token this view hands out.
        return 'Token realm="healthorch"'

    @extend_schema(
        tags=["auth"],
        request=s.LoginInput,
        responses={200: s.TokenOutput, **errors(400, 401, 429)},
        summary="Exchange email and password for an API token",
    )
    def post(self, request: Request) -> Response:
        data = s.LoginInput(data=request.data)
        data.is_valid(raise_exception=True)
        email = data.validated_data["email"].lower()
        wait = throttling.login_retry_after(request, email)
        if wait is not None:
            raise exceptions.Throttled(wait=wait, detail="Too many failed sign-in attempts.")
        user = User.objects.filter(email__iexact=email, is_active=True).first()
        authenticated = (
            authenticate(
                request, username=user.get_username(), password=data.validated_data["password"]
            )
            if user is not None
            else None
        )
        if authenticated is None:
            throttling.login_failure_record(request, email)
            # One message for an unknown email and a wrong password: no account enumeration.
            raise exceptions.AuthenticationFailed("Email or password is incorrect.")
        throttling.login_failures_clear(request, email)
        return Response({"token": services.user_token(user=authenticated)})


class DevBootstrapView(_Public):
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "bootstrap"

    @extend_schema(
        tags=["dev"],
        request=s.BootstrapInput,
        responses={201: s.BootstrapOutput, **errors(400, 404)},
        summary="Dev only (HEALTHORCH_DEV_BOOTSTRAP=1): an organization and a write API key",
    )
    def post(self, request: Request) -> Response:
        if not settings.HEALTHORCH_DEV_BOOTSTRAP:
            raise Http404
        data = s.BootstrapInput(data=request.data)
        data.is_valid(raise_exception=True)
        org = services.organization_create(name=data.validated_data["name"])
        issued = services.api_key_create(org=org, name="bootstrap", scopes=["read", "write"])
        body = {"org_id": org.id, "slug": org.slug, "api_key": issued.secret, "plan": org.plan_id}
        return Response(s.BootstrapOutput(body).data, status=status.HTTP_201_CREATED)


@extend_schema(tags=["organization"], parameters=[ORG_HEADER])
class OrganizationView(TenantAPIView):
    write_access = Access.MANAGE

    @extend_schema(responses={200: s.OrganizationOutput, **errors(401, 403, 404)})
    def get(self, request: Request) -> Response:
        return Response(self._out())

    @extend_schema(
        request=s.OrganizationUpdateInput,
        responses={200: s.OrganizationOutput, **errors(*AUTHENTICATED, 402)},
        summary="Rename the organization or change its slug (owner/admin)",
    )
    def patch(self, request: Request) -> Response:
        data = self.validated(s.OrganizationUpdateInput, partial=True)
        fields = dict(data)
        require_mfa = fields.pop("require_mfa", None)
        services.organization_update(org=self.organization, **fields)
        if require_mfa is not None:
            services.organization_require_mfa(org=self.organization, required=require_mfa)
        return Response(self._out())

    def _out(self) -> dict:
        return s.OrganizationOutput(self.organization, context={"tenancy": self.tenancy}).data


@extend_schema_view(
    list=extend_schema(responses={200: s.MemberOutput(many=True), **errors(401, 403, 404)}),
    retrieve=extend_schema(responses={200: s.MemberOutput, **errors(401, 403, 404)}),
    create=extend_schema(
        request=s.MemberCreateInput,
        responses={201: s.MemberOutput, **errors(*AUTHENTICATED)},
        summary="Add an existing user by email with a role (owner/admin)",
    ),
    partial_update=extend_schema(
        request=s.MemberUpdateInput,
        responses={200: s.MemberOutput, **errors(*AUTHENTICATED, 409)},
        summary="Change a member's role (owner/admin; only owners touch the owner role)",
    ),
    destroy=extend_schema(
        responses={204: None, **errors(401, 403, 404, 409)},
        summary="Remove a member, or leave (any member may remove themself)",
    ),
)
@extend_schema(tags=["members"], parameters=[ORG_HEADER])
class MemberViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    model = Membership
    serializer_class = s.MemberOutput
    write_access = Access.MANAGE
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def scoped_queryset(self, org):
        return selectors.member_list(org=org)

    def required_access(self, request: Request) -> Access:
        # Leaving is everyone's right: a member may delete their own membership.
        if self.action == "destroy" and self._is_self():
            return Access.READ
        return super().required_access(request)

    def create(self, request: Request) -> Response:
        data = self.validated(s.MemberCreateInput)
        membership = services.member_add(
            org=self.organization, actor_role=self.tenancy.role, **data
        )
        return Response(s.MemberOutput(membership).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str) -> Response:
        data = self.validated(s.MemberUpdateInput)
        membership = services.member_change_role(
            membership=self.get_object(),
            role=data["role"],
            actor_role=self.tenancy.role,
        )
        return Response(s.MemberOutput(membership).data)

    def destroy(self, request: Request, pk: str) -> Response:
        membership = self.get_object()
        user = self.tenancy.user
        services.member_remove(
            membership=membership,
            actor_role=self.tenancy.role or Role.VIEWER,
            # The row is loaded now; no need to ask the database again as _is_self() does.
            actor_is_self=user is not None and membership.user_id == user.pk,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _is_self(self) -> bool:
        user = self.tenancy.user
        pk = self.kwargs.get("pk")
        return (
            user is not None
            and pk is not None
            and self.get_queryset().filter(pk=pk, user=user).exists()
        )


# Owner/admin only: list, issue and revoke something whose secret is handed out once (API keys,
# invitations). Revoking keeps the row for the audit trail. (A comment, not a docstring: the
# schema would show a docstring as every operation's description.)
class _IssuedSecretViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet):
    read_access = Access.MANAGE
    write_access = Access.MANAGE
    http_method_names = ["get", "post", "delete", "head", "options"]

    def revoke(self, row) -> None:
        raise NotImplementedError

    def destroy(self, request: Request, pk: str) -> Response:
        self.revoke(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(responses={200: s.ApiKeyOutput(many=True), **errors(401, 403, 404)}),
    retrieve=extend_schema(responses={200: s.ApiKeyOutput, **errors(401, 403, 404)}),
    create=extend_schema(
        request=s.ApiKeyCreateInput,
        responses={201: s.ApiKeyCreatedOutput, **errors(*AUTHENTICATED)},
        summary="Create a key; the secret is in the response once and never again",
    ),
    destroy=extend_schema(
        responses={204: None, **errors(401, 403, 404)},
        summary="Revoke a key (it stops working at once; the row stays for audit)",
    ),
)
@extend_schema(tags=["api-keys"], parameters=[ORG_HEADER])
class ApiKeyViewSet(_IssuedSecretViewSet):
    model = ApiKey
    serializer_class = s.ApiKeyOutput

    def scoped_queryset(self, org):
        return selectors.api_key_list(org=org)

    def create(self, request: Request) -> Response:
        data = self.validated(s.ApiKeyCreateInput)
        issued = services.api_key_create(
            org=self.organization, created_by=self.tenancy.user, **data
        )
        out = s.ApiKeyOutput(issued.api_key).data | {"key": issued.secret}
        return Response(out, status=status.HTTP_201_CREATED)

    def revoke(self, row: ApiKey) -> None:
        services.api_key_revoke(api_key=row)


@extend_schema_view(
    list=extend_schema(responses={200: s.InvitationOutput(many=True), **errors(401, 403, 404)}),
    retrieve=extend_schema(responses={200: s.InvitationOutput, **errors(401, 403, 404)}),
    create=extend_schema(
        request=s.InvitationCreateInput,
        responses={201: s.InvitationOutput, **errors(*AUTHENTICATED, 402)},
        summary="Invite someone by email with a role; the link goes to that address (owner/admin)",
    ),
    destroy=extend_schema(
        responses={204: None, **errors(401, 403, 404)},
        summary="Revoke an invitation (its link stops working)",
    ),
)
@extend_schema(tags=["members"], parameters=[ORG_HEADER])
class InvitationViewSet(_IssuedSecretViewSet):
    model = Invitation
    serializer_class = s.InvitationOutput

    def scoped_queryset(self, org):
        return selectors.invitation_list(org=org)

    def create(self, request: Request) -> Response:
        data = self.validated(s.InvitationCreateInput)
        issued = services.invitation_create(
            org=self.organization,
            actor_role=self.tenancy.role or Role.VIEWER,
            invited_by=self.tenancy.user,
            base_url=request.build_absolute_uri("/"),
            **data,
        )
        return Response(s.InvitationOutput(issued.invitation).data, status=status.HTTP_201_CREATED)

    def revoke(self, row: Invitation) -> None:
        services.invitation_revoke(invitation=row)


class UsageView(TenantAPIView):
    @extend_schema(
        tags=["plans"],
        parameters=[ORG_HEADER],
        responses={200: s.UsageOutput, **errors(401, 403, 404, 429)},
        summary="This billing period's usage next to the plan's limits",
    )
    def get(self, request: Request) -> Response:
        return Response(s.UsageOutput(plan_selectors.usage_report(org=self.organization)).data)
