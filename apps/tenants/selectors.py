"""Reads for tenants: who is calling, on behalf of which organization, with what rights."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from apps.tenants.models import ApiKey, ApiKeyScope, Invitation, Membership, Organization, Role


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


def member_list(*, org: Organization) -> QuerySet[Membership]:
    return Membership.objects.for_org(org).select_related("user").order_by("created_at")


def api_key_list(*, org: Organization) -> QuerySet[ApiKey]:
    return ApiKey.objects.for_org(org).select_related("created_by").order_by("-created_at")


def invitation_list(*, org: Organization) -> QuerySet[Invitation]:
    return Invitation.objects.for_org(org).select_related("invited_by").order_by("-created_at")


def member_count(org: Organization) -> int:
    """How many members the organization has (the plan's `members` limit counts them)."""
    return Membership.objects.filter(organization=org).count()
