"""healthorch's rules inside allauth's flows: usernames are emails, each sign-in runs
apps.accounts.services.account_signed_in, and invited addresses count as verified."""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse

from apps.accounts import services


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return settings.ACCOUNT_ALLOW_SIGNUP

    def populate_username(self, request: HttpRequest, user: Any) -> None:
        # The API's register and the console have always used the email as the username.
        user.username = user.email.strip().lower()
        user.email = user.username

    def post_login(self, request: HttpRequest, user: Any, **kwargs: Any) -> HttpResponse:
        refusal = services.account_signed_in(request=request, user=user)
        if refusal:
            messages.error(request, f"The invitation could not be used: {refusal}")
        return super().post_login(request, user, **kwargs)
