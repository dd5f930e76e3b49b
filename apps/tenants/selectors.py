"""Reads for tenants: who is calling, on behalf of which organization, with what rights."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from rest_framework import exceptions
from rest_framework.request import Request

from apps.tenants.authentication import ApiKeyPrincipal
from apps.tenants.models import ApiKey, ApiKeyScope, Membership, Organization, Role


class Access(IntEnum):
    READ = 1  # viewers and read keys
    WRITE = 2  # members and write keys: monitors, incidents, channels...
    MANAGE = 3  # owners and admins only: the organization itself, members, API keys


_ROLE_ACCESS = {
    Role.VIEWER: Access.READ,
    Role.MEMBER: Access.WRITE,
    Role.ADMIN: Access.MANAGE,
    Role.OWNER: Access.MANAGE,
}


@dataclass(frozen=True)
class Tenancy:
    """The organization a request acts on, and the caller's standing in it."""

    organization: Organization
    role: str | None = None  # a user's role; None for API keys
    user: AbstractBaseUser | None = None
    api_key: ApiKey | None = None

    @property
    def access(self) -> Access:
        if self.api_key is not None:
            # Keys never manage members or keys: a leaked key must not be able to mint more.
            return Access.WRITE if self.api_key.allows(ApiKeyScope.WRITE) else Access.READ
        return _ROLE_ACCESS[Role(self.role)]

    def allows(self, needed: Access) -> bool:
        return self.access >= needed


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


def member_list(*, org: Organization) -> QuerySet[Membership]:
    return Membership.objects.for_org(org).select_related("user").order_by("created_at")


def api_key_list(*, org: Organization) -> QuerySet[ApiKey]:
    return ApiKey.objects.for_org(org).select_related("created_by").order_by("-created_at")


def member_count(org: Organization) -> int:
    """How many members the organization has (the plan's `members` limit counts them)."""
    return Membership.objects.filter(organization=org).count()
