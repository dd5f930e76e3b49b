"""The console waits for a second factor where an organization requires one."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse

from apps.accounts.selectors import SECOND_FACTOR_PENDING


class SecondFactorRequiredMiddleware:
    """A member of an organization that requires two-factor sign-in, signed in without one,
    reaches the console only after setting one up.

    The verdict is taken once at sign-in (apps.accounts.services.account_signed_in) and kept
    in the session, so console pages pay no query for it; setting up a factor clears it.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        console = request.path.startswith("/admin/")
        # The API with the browser's session is the console by another door; API keys and
        # tokens carry their own credential and are not this session's.
        by_session = request.path.startswith("/api/") and not (
            request.headers.get("Authorization") or request.headers.get("X-API-Key")
        )
        if (console or by_session) and request.session.get(SECOND_FACTOR_PENDING):
            from apps.accounts import selectors

            if selectors.has_second_factor(request.user):
                request.session.pop(SECOND_FACTOR_PENDING, None)
            elif by_session:
                return JsonResponse(
                    {
                        "error": "Forbidden",
                        "detail": "Your organization requires two-factor sign-in: set up an "
                        "authenticator app first.",
                        "code": "second_factor_required",
                    },
                    status=403,
                )
            else:
                messages.warning(
                    request,
                    "Your organization requires two-factor sign-in: set up an authenticator "
                    "app before you continue to the console.",
                )
                return HttpResponseRedirect(reverse("mfa_activate_totp"))
        return self.get_response(request)
