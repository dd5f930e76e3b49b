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
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from apps.core.admin import ConsoleAdmin, is_operator
from apps.tenants.gate.admin import SESSION_ORG_KEY, member_organizations, tenant_roles
from apps.tenants.models import Role


def _list_of(url: str) -> str:
    parts = [p for p in url.split("?")[0].split("/") if p]
    if len(parts) > 3 and parts[0] == "admin":
        return "/" + "/".join(parts[:3]) + "/"
    return url


#: libraries' models shown to operators as one section of their own, after the product's
THIRD_PARTY_SECTIONS = {"djstripe": "Stripe data"}


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
            roles = tenant_roles(request, scoped=False)
            context["console_billing"] = any(r in (Role.OWNER, Role.ADMIN) for r in roles.values())
            orgs = member_organizations(request)
            if len(orgs) > 1:
                context["console_orgs"] = orgs
                context["console_org"] = request.session.get(SESSION_ORG_KEY, "")
        return context

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        """The product's sections, then each library's as one named section (dj-stripe's
        ~50 models as "Stripe data"), for operators only: a tenant never sees them (their
        pages are operators' too, see admin_view)."""
        ours, theirs = [], []
        for app in super().get_app_list(request, app_label):
            name = THIRD_PARTY_SECTIONS.get(app["app_label"])
            if name is None:
                ours.append(app)
            elif is_operator(request):
                theirs.append({**app, "name": name, "third_party": True})
        return ours + theirs

    def dashboard(self, request: HttpRequest) -> dict[str, Any] | None:
        """The figures the caller may see: the platform's for operators, else their
        organizations' (with the onboarding checklist while one organization is in view)."""
        from apps.console import figures

        if is_operator(request):
            return figures.platform_dashboard()
        roles = tenant_roles(request)
        if not roles:
            return None
        dashboard = figures.organization_dashboard(org_ids=list(roles))
        if len(roles) == 1:
            dashboard["onboarding"] = figures.onboarding(org_id=next(iter(roles)))
        return dashboard

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        extra_context = dict(extra_context or {})
        dashboard = self.dashboard(request)
        if dashboard is not None:
            extra_context["dashboard"] = dashboard
        # The index folds the libraries' sections away under their own heading.
        apps = self.get_app_list(request)
        extra_context["app_list"] = [a for a in apps if not a.get("third_party")]
        extra_context["third_party_apps"] = [a for a in apps if a.get("third_party")]
        return super().index(request, extra_context)

    def dashboard_live(self, request: HttpRequest) -> HttpResponse:
        """The dashboard's figures alone (no page around them), for the index to refresh
        itself with; the same figures and scope as the index."""
        dashboard = self.dashboard(request)
        if dashboard is None:
            return HttpResponse("", content_type="text/html; charset=utf-8")
        return TemplateResponse(
            request, "admin/console/dashboard_live.html", {"dashboard": dashboard}
        )

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

    # The Billing pages (apps.console.billing): bound here so they pass as the site's own.
    def billing(self, request: HttpRequest) -> HttpResponse:
        from apps.console import billing

        return billing.billing_view(self, request)

    def billing_upgrade(self, request: HttpRequest) -> HttpResponse:
        from apps.console import billing

        return billing.upgrade_view(self, request)

    def billing_portal(self, request: HttpRequest) -> HttpResponse:
        from apps.console import billing

        return billing.portal_view(self, request)

    def billing_done(self, request: HttpRequest) -> HttpResponse:
        from apps.console import billing

        return billing.done_view(self, request)

    # The telemetry pages (apps.console.telemetry), bound here for the same reason.
    def telemetry_sources(self, request: HttpRequest) -> HttpResponse:
        from apps.console import telemetry

        return telemetry.sources_view(self, request)

    def telemetry_source(self, request: HttpRequest, org_id: Any, source: str) -> HttpResponse:
        from apps.console import telemetry

        return telemetry.source_view(self, request, org_id, source)

    def telemetry_logs(self, request: HttpRequest, org_id: Any) -> HttpResponse:
        from apps.console import telemetry

        return telemetry.logs_view(self, request, org_id)

    def telemetry_logs_tail(self, request: HttpRequest, org_id: Any) -> HttpResponse:
        from apps.console import telemetry

        return telemetry.logs_tail_view(self, request, org_id)

    def _page(self, route: str, name: str) -> Any:
        # Each of the site's own pages is routed under the name of the method that serves it.
        return path(route, self.admin_view(getattr(self, name)), name=name)

    def get_urls(self) -> list:
        urls = super().get_urls()
        return [
            self._page("telemetry/sources/", "telemetry_sources"),
            self._page("telemetry/<uuid:org_id>/sources/<str:source>/", "telemetry_source"),
            self._page("telemetry/<uuid:org_id>/logs/", "telemetry_logs"),
            self._page("telemetry/<uuid:org_id>/logs/tail/", "telemetry_logs_tail"),
            self._page("dashboard/live/", "dashboard_live"),
            self._page("billing/", "billing"),
            self._page("billing/upgrade/", "billing_upgrade"),
            self._page("billing/portal/", "billing_portal"),
            self._page("billing/done/", "billing_done"),
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
