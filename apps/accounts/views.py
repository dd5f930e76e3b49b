"""The public face (the front page) and the account pages healthorch adds to allauth's:
sign-in with the login throttle's status code, and opening an invitation."""

from __future__ import annotations

from allauth.account import views as allauth_views
from allauth.account.adapter import get_adapter
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from apps.accounts import selectors, services
from apps.core.errors import ServiceError
from apps.tenants import services as tenants

#: how long the rendered front page may be served from the cache at most (it is also
#: dropped as soon as a public plan changes: the key carries the price list's version)
LANDING_CACHE_SECONDS = 300


class LoginView(allauth_views.LoginView):
    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = super().dispatch(request, *args, **kwargs)
        wait = getattr(request, "login_retry_after", None)
        if wait is not None and response.status_code == 200:
            response.status_code = 429
            response["Retry-After"] = str(wait)
        return response


login = LoginView.as_view()


@require_http_methods(["GET", "HEAD"])
def landing(request: HttpRequest) -> HttpResponse:
    """What healthorch does, the live price list, the ways in. The page is the same for
    everyone (who is signed in changes nothing on it), so it is rendered once per version of
    the price list and served from the shared cache."""
    key = f"landing:v1:{selectors.price_list_version()}"
    body = cache.get(key)
    if body is None:
        body = render_to_string(
            "public/landing.html",
            {
                "plans": selectors.price_list(),
                "demo_status_page": settings.HEALTHORCH_DEMO_STATUS_PAGE,
                "signup_open": settings.ACCOUNT_ALLOW_SIGNUP,
            },
        )
        cache.set(key, body, LANDING_CACHE_SECONDS)
    response = HttpResponse(body)
    response["Cache-Control"] = "public, max-age=60"
    return response


@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    """An invitation's link. Signed in: a button that joins. Signed out: the invitation is
    remembered in the session and the address counts as verified (the link came to it), then
    signing up or in joins (apps.accounts.services.account_signed_in)."""
    try:
        found = tenants.invitation_find(token=token)
    except ServiceError as exc:
        return _refused(request, exc.detail, status=404)
    state = found.state
    if state != "pending":
        return _refused(request, f"This invitation was {state}.", status=410)
    if request.method == "POST" and request.user.is_authenticated:
        try:
            tenants.invitation_accept(token=token, user=request.user)
        except ServiceError as exc:
            return _refused(request, exc.detail, status=409)
        return HttpResponseRedirect(reverse("admin:index"))
    if not request.user.is_authenticated:
        request.session[services.PENDING_INVITATION] = token
        get_adapter(request).stash_verified_email(request, found.email)
    return render(request, "public/invitation.html", {"invitation": found})


def _refused(request: HttpRequest, reason: str, *, status: int) -> HttpResponse:
    return render(request, "public/invitation_refused.html", {"reason": reason}, status=status)


@require_http_methods(["GET", "POST"])
def sso(request: HttpRequest) -> HttpResponse:
    """Single sign-on: the person gives their email; if its domain's organization signs in
    through its own provider, a button takes them there (a form, so no JavaScript)."""
    email = (request.POST.get("email") or "").strip()
    found = selectors.sso_for_email(email) if request.method == "POST" and email else None
    context = {"email": email, "asked": request.method == "POST", "found": found}
    if found is not None:
        context["provider_url"] = reverse(
            "openid_connect_login", kwargs={"provider_id": found.provider_id}
        )
        context["next"] = request.GET.get("next") or reverse("admin:index")
    return render(request, "public/sso.html", context, status=200 if found or not email else 404)
