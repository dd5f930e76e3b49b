"""The console waits for a second factor where an organization requires one."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
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
        if request.path.startswith("/admin/") and request.session.get(SECOND_FACTOR_PENDING):
            from apps.accounts import selectors

            if selectors.has_second_factor(request.user):
                request.session.pop(SECOND_FACTOR_PENDING, None)
            else:
                messages.warning(
                    request,
                    "Your organization requires two-factor sign-in: set up an authenticator "
                    "app before you continue to the console.",
                )
                return HttpResponseRedirect(reverse("mfa_activate_totp"))
        return self.get_response(request)
