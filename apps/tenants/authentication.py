"""How a request proves who it is: API keys, user tokens, browser sessions."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from apps.tenants.models import ApiKey
from apps.tenants.services import API_KEY_PREFIX, api_key_touch, hash_api_key


class ApiKeyPrincipal:
    """The `request.user` of an API-key request: authenticated, but not a person."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"

    def has_perm(self, *args: object, **kwargs: object) -> bool:
        return False


def _raw_api_key(request: Request) -> str | None:
    header = request.META.get("HTTP_X_API_KEY")
    if header:
        return header.strip()
    auth = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip().startswith(API_KEY_PREFIX):
        return value.strip()
    return None


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`X-API-Key: hk_...` or `Authorization: Bearer hk_...`.

    One indexed lookup by the key's SHA-256 (joined with its organization); `last_used_at` is
    written at most once a minute per key.
    """

    def authenticate(self, request: Request) -> tuple[ApiKeyPrincipal, ApiKey] | None:
        raw = _raw_api_key(request)
        if raw is None:
            return None
        key = (
            ApiKey.objects.select_related("organization__plan")
            .filter(key_hash=hash_api_key(raw))
            .first()
        )
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        now = timezone.now()
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        if key.expires_at is not None and key.expires_at <= now:
            raise exceptions.AuthenticationFailed("This API key has expired.")
        api_key_touch(api_key=key, now=now)
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="healthorch", charset="UTF-8"'


class BearerTokenAuthentication(authentication.TokenAuthentication):
    """DRF user tokens: `Authorization: Token <key>`, from login or registration."""

    keyword = "Token"


class SessionAuthentication(authentication.SessionAuthentication):
    """Browser sessions (admin users trying the API); CSRF is enforced for writes."""
