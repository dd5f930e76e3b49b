from __future__ import annotations

from rest_framework import serializers

from apps.core.api import StrictBooleanField, StrictSerializer
from apps.tenants.models import ApiKey, ApiKeyScope, Invitation, Membership, Organization, Role

# --- input ----------------------------------------------------------------------------------


class RegisterInput(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False)
    organization = serializers.CharField(max_length=120)


class LoginInput(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=128, trim_whitespace=False)


class BootstrapInput(StrictSerializer):
    name = serializers.CharField(max_length=120, required=False, default="Dev organization")


class OrganizationUpdateInput(StrictSerializer):
    name = serializers.CharField(max_length=120, required=False)
    slug = serializers.SlugField(max_length=64, required=False)
    billing_email = serializers.EmailField(required=False, allow_blank=True)
    require_mfa = StrictBooleanField(
        required=False,
        help_text="Every member must sign in with a second factor (plan feature mfa_enforcement)",
    )


class MemberCreateInput(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class InvitationCreateInput(StrictSerializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class MemberUpdateInput(StrictSerializer):
    role = serializers.ChoiceField(choices=Role.choices)


class ApiKeyCreateInput(StrictSerializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ApiKeyScope.choices),
        allow_empty=False,
        default=lambda: [ApiKeyScope.READ],
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


# --- output ---------------------------------------------------------------------------------


class TokenOutput(serializers.Serializer):
    token = serializers.CharField()
    organization = serializers.SlugField(required=False)


class BootstrapOutput(serializers.Serializer):
    org_id = serializers.UUIDField()
    slug = serializers.SlugField()
    api_key = serializers.CharField()
    plan = serializers.CharField()


class OrganizationOutput(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()
    plan = serializers.CharField(source="plan_id", read_only=True)

    class Meta:
        model = Organization
        fields = [
            "id",
            "name",
            "slug",
            "plan",
            "billing_email",
            "require_mfa",
            "role",
            "created_at",
        ]

    def get_role(self, obj: Organization) -> str | None:
        tenancy = self.context.get("tenancy")
        return tenancy.role if tenancy else None


class MemberOutput(serializers.ModelSerializer):
    email = serializers.EmailField(source="user.email")
    user_id = serializers.IntegerField(source="user.id")

    class Meta:
        model = Membership
        fields = ["id", "user_id", "email", "role", "created_at"]


class InvitationOutput(serializers.ModelSerializer):
    state = serializers.CharField(read_only=True)
    invited_by = serializers.EmailField(source="invited_by.email", default=None)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "state", "invited_by", "created_at", "expires_at"]


class ApiKeyOutput(serializers.ModelSerializer):
    active = serializers.SerializerMethodField()
    created_by = serializers.EmailField(source="created_by.email", default=None)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "active",
            "created_at",
            "created_by",
            "last_used_at",
            "expires_at",
            "revoked_at",
        ]

    def get_active(self, obj: ApiKey) -> bool:
        return obj.is_active()


class ApiKeyCreatedOutput(ApiKeyOutput):
    key = serializers.CharField(help_text="The secret. Shown once; store it now.")

    class Meta(ApiKeyOutput.Meta):
        fields = [*ApiKeyOutput.Meta.fields, "key"]


class UsageItem(serializers.Serializer):
    used = serializers.IntegerField()
    limit = serializers.IntegerField(allow_null=True)


class UsageOutput(serializers.Serializer):
    plan = serializers.CharField()
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    features = serializers.ListField(child=serializers.CharField())
    limits = serializers.DictField(child=serializers.IntegerField(allow_null=True))
    usage = serializers.DictField(child=UsageItem())
    overridden = serializers.ListField(child=serializers.CharField())
