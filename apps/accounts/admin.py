"""allauth's own models in the console: operators only (a member manages their email
addresses and second factors on the account pages, never another member's)."""

from __future__ import annotations

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.contrib import admin

from apps.core.admin import OperatorOnlyAdmin

for model in (EmailAddress, Authenticator):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


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
