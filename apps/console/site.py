"""healthorch's admin site: the dashboard on the index, tenant members let in, and a switch
between organizations for members of several.

Who sees what is decided in one place, apps.tenants.gate.admin (the tenancy gate); this site only lets
tenant members through the door (Django's admin admits staff only) and draws the index.
"""

from __future__ import annotations

import inspect
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.core.admin import ConsoleAdmin, is_operator
from apps.tenants.gate.admin import SESSION_ORG_KEY, member_organizations, tenant_roles


def _list_of(url: str) -> str:
    parts = [p for p in url.split("?")[0].split("/") if p]
    if len(parts) > 3 and parts[0] == "admin":
        return "/" + "/".join(parts[:3]) + "/"
    return url


class ConsoleSite(admin.AdminSite):
    site_header = "healthorch console"
    site_title = "healthorch console"
    index_title = "Dashboard"
    index_template = "admin/console_index.html"

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        """One sign-in for everyone: the account pages' (by email, with the login throttle
        and the second factor; apps.accounts). The console's own form is never shown.
        Someone signed in whom the console does not admit is told so, not sent round again."""
        if request.user.is_authenticated:
            raise PermissionDenied
        target = request.GET.get(REDIRECT_FIELD_NAME) or reverse("admin:index")
        if not url_has_allowed_host_and_scheme(target, {request.get_host()}):
            target = reverse("admin:index")
        return HttpResponseRedirect(f"{reverse('account_login')}?{urlencode({'next': target})}")

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        if not user.is_active:
            return False
        return bool(user.is_staff or user.is_superuser or tenant_roles(request, scoped=False))

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        if getattr(request.user, "is_authenticated", False) and not is_operator(request):
            orgs = member_organizations(request)
            if len(orgs) > 1:
                context["console_orgs"] = orgs
                context["console_org"] = request.session.get(SESSION_ORG_KEY, "")
        return context

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        from apps.console import figures

        extra_context = dict(extra_context or {})
        if is_operator(request):
            extra_context["dashboard"] = figures.platform_dashboard()
        else:
            org_ids = list(tenant_roles(request))
            if org_ids:
                extra_context["dashboard"] = figures.organization_dashboard(org_ids=org_ids)
        return super().index(request, extra_context)

    def admin_view(self, view: Any, cacheable: bool = False) -> Any:
        """The site's own pages and our ModelAdmins' pass as Django wraps them; any other page
        (a library's, such as dj-stripe's sync and cancel actions) is for operators only: such
        a page checks no permission itself, trusting Django's admin to admit staff only,
        whereas this site also lets tenant members in."""
        wrapped = super().admin_view(view, cacheable)
        owner = getattr(inspect.unwrap(view), "__self__", None)
        if owner is self or isinstance(owner, ConsoleAdmin):
            return wrapped

        @wraps(wrapped)
        def operators_only(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.user.is_authenticated and not is_operator(request):
                raise PermissionDenied
            return wrapped(request, *args, **kwargs)

        return operators_only

    def get_urls(self) -> list:
        urls = super().get_urls()
        return [
            path(
                "switch-organization/",
                self.admin_view(require_POST(self.switch_organization)),
                name="switch_organization",
            ),
            *urls,
        ]

    def switch_organization(self, request: HttpRequest) -> HttpResponse:
        """Show one organization (or, with an empty choice, all of the member's)."""
        chosen = request.POST.get("organization", "")
        if chosen:
            if chosen not in {str(pk) for pk in tenant_roles(request, scoped=False)}:
                raise Http404  # not a member there: as if it did not exist
            request.session[SESSION_ORG_KEY] = chosen
        else:
            request.session.pop(SESSION_ORG_KEY, None)
        # Back to the list the member was on: an object page would belong to the old choice.
        target = _list_of(request.POST.get("next", ""))
        if not url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            target = reverse("admin:index")
        return HttpResponseRedirect(target)
