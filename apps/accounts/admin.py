"""allauth's own models in the console: operators only (a member manages their email
addresses and second factors on the account pages, never another member's)."""

from __future__ import annotations

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from django.contrib import admin, messages

from apps.accounts import services
from apps.accounts.models import SingleSignOn
from apps.core.admin import OperatorOnlyAdmin

# allauth's provider rows are not used (the organizations' SingleSignOn rows are) and its
# tokens are not stored: neither is shown.
for model in (EmailAddress, Authenticator, SocialAccount, SocialApp, SocialToken):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


@admin.register(SingleSignOn)
class SingleSignOnAdmin(OperatorOnlyAdmin):
    """Operators verify that an organization owns the email domain it signs in for (a DNS
    record or a contract): until then its provider is not offered."""

    list_display = ["organization", "domain", "issuer", "domain_verified_at", "enabled"]
    search_fields = ["domain", "organization__slug"]
    fields = ["organization", "issuer", "client_id", "domain", "domain_verified_at", "enabled"]
    readonly_fields = fields
    actions = ["verify_domain", "unverify_domain"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser

    @admin.action(description="Mark the domain verified")
    def verify_domain(self, request, queryset) -> None:
        for sso in queryset:
            services.sso_verify_domain(sso=sso)
        self.message_user(request, "Verified.", messages.SUCCESS)

    @admin.action(description="Withdraw the domain's verification")
    def unverify_domain(self, request, queryset) -> None:
        for sso in queryset:
            services.sso_verify_domain(sso=sso, verified=False)
        self.message_user(request, "Withdrawn.", messages.SUCCESS)


@admin.register(SocialAccount)
class SocialAccountAdmin(OperatorOnlyAdmin):
    list_display = ["user", "provider", "uid", "last_login"]
    search_fields = ["user__email", "uid"]
    fields = ["user", "provider", "uid", "last_login", "date_joined"]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(EmailAddress)
class EmailAddressAdmin(OperatorOnlyAdmin):
    list_display = ["email", "user", "verified", "primary"]
    list_filter = ["verified", "primary"]
    search_fields = ["email", "user__email"]
    raw_id_fields = ["user"]


@admin.register(Authenticator)
class AuthenticatorAdmin(OperatorOnlyAdmin):
    """Operators may remove a lost factor (the member then signs in with the password alone
    and sets up a new one); the secrets themselves are never shown."""

    list_display = ["user", "type", "created_at", "last_used_at"]
    list_filter = ["type"]
    search_fields = ["user__email"]
    fields = ["user", "type", "created_at", "last_used_at"]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
