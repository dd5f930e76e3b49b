"""Single sign-on per organization, through allauth's OpenID Connect provider.

allauth asks its social-account adapter for the "apps" (provider configurations); here they
are built from the organizations' `SingleSignOn` rows, with the secret decrypted only for
the request that needs it. A provider is offered only for a verified domain of an
organization whose plan has `sso`, and a person it returns is let in only if their email is
in that domain. Every request allauth makes to the provider (discovery, token, keys, user
info) goes through the outbound guard.
"""

from __future__ import annotations

import functools
from typing import Any

from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.http import HttpRequest
from django.shortcuts import render

from apps.accounts import selectors
from apps.accounts.models import SingleSignOn
from apps.accounts.services import SSO_ORGANIZATION
from apps.core import outbound


def social_app(sso: SingleSignOn) -> Any:
    from allauth.socialaccount.models import SocialApp

    from apps.core.crypto import decrypt

    return SocialApp(
        provider="openid_connect",
        provider_id=sso.provider_id,
        name=sso.organization.name,
        client_id=sso.client_id,
        secret=decrypt(sso.client_secret_encrypted),
        settings={"server_url": sso.issuer, "verified_email": True},
    )


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def list_apps(self, request: HttpRequest, provider: Any = None, client_id: Any = None):
        # Only a provider asked for by its id: a list of every organization's providers
        # (allauth's login page would show one) is never drawn.
        if not provider or provider == "openid_connect":
            return []
        sso = selectors.sso_by_provider_id(provider)
        if sso is None or (client_id and client_id != sso.client_id):
            return []
        return [social_app(sso)]

    def get_requests_session(self):
        session = outbound.session(outbound.Guard.for_tenant())
        session.request = functools.partial(
            session.request, timeout=settings.SOCIALACCOUNT_REQUESTS_TIMEOUT
        )
        return session

    def pre_social_login(self, request: HttpRequest, sociallogin: Any) -> None:
        sso = selectors.sso_by_provider_id(sociallogin.account.provider)
        email = (sociallogin.user.email or "").strip().lower()
        if not email and sociallogin.email_addresses:
            email = sociallogin.email_addresses[0].email.strip().lower()
        if sso is None or email.rpartition("@")[2] != sso.domain:
            raise ImmediateHttpResponse(
                render(
                    request,
                    "public/sso_refused.html",
                    {"email": email, "domain": sso.domain if sso else ""},
                    status=403,
                )
            )
        request.session[SSO_ORGANIZATION] = str(sso.organization_id)

    def populate_user(self, request: HttpRequest, sociallogin: Any, data: dict) -> Any:
        user = super().populate_user(request, sociallogin, data)
        user.email = (user.email or "").strip().lower()
        user.username = user.email
        return user

    def is_open_for_signup(self, request: HttpRequest, sociallogin: Any) -> bool:
        # A verified domain's people may always get an account through their provider.
        return True
