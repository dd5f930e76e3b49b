"""Every route of the product, read from Django's URL resolver and the console's registry, and
the table that says how an outsider tries each one.

A route that reaches tenant data is in OBJECT_ROUTES (its URL names one object: the model the
scene builds it from) or ORGANIZATION_ROUTES (it answers for the caller's organization);
anything else is in PUBLIC_ROUTES with the reason it needs no tenancy. A route in none of them
fails tests/tenancy/test_route_guard.py, and so does a stale entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.contrib import admin
from django.contrib.admin import ModelAdmin
from django.urls import URLPattern, URLResolver, get_resolver

#: route name -> the scene's model whose row the URL names (pk, incident_id, monitor_id, kind)
OBJECT_ROUTES: dict[str, str] = {
    "member-detail": "tenants.Membership",
    "api-key-detail": "tenants.ApiKey",
    "invitation-detail": "tenants.Invitation",
    "audit-log-detail": "audit.AuditEntry",
    "monitor-detail": "monitors.Monitor",
    "monitor-check": "monitors.Monitor",
    "monitor-pause": "monitors.Monitor",
    "monitor-resume": "monitors.Monitor",
    "monitor-results": "monitors.Monitor",
    "monitor-uptime": "monitors.Monitor",
    "insights": "monitors.Monitor",
    "incident-detail": "incidents.Incident",
    "incident-acknowledge": "incidents.Incident",
    "incident-notes": "incidents.Incident",
    "incident-resolve": "incidents.Incident",
    "incident-snooze": "incidents.Incident",
    "incident-timeline": "incidents.Incident",
    "incident-heal": "incidents.Incident",
    "incident-root-cause": "incidents.Incident",
    "incident-updates": "incidents.Incident",
    "incident-postmortem": "incidents.Incident",
    "alert-rule-detail": "incidents.AlertRule",
    "maintenance-window-detail": "incidents.MaintenanceWindow",
    "monitor-dependency-detail": "incidents.MonitorDependency",
    "channel-detail": "alerts.Channel",
    "channel-test": "alerts.Channel",
    "channel-test-alias": "alerts.Channel",
    "escalation-policy-detail": "alerts.EscalationPolicy",
    "notification-detail": "alerts.Notification",
    "healing-policy-detail": "healing.HealingPolicy",
    "healing-attempt-detail": "healing.HealingAttempt",
    "status-page-detail": "statuspages.StatusPage",
    "status-page-section-detail": "statuspages.StatusPageSection",
    "badge-detail": "statuspages.Badge",
}

#: routes named by a kind, not an id: every organization has its own row of each kind, so an
#: outsider is answered with theirs (never ours) instead of a 404
NAMED_BY_KIND = {"alert-rule-detail"}

#: routes without an object in the URL: they answer for the caller's organization
ORGANIZATION_ROUTES: set[str] = {
    "organization",
    "usage",
    "member-list",
    "api-key-list",
    "invitation-list",
    "sso",
    "audit-log-list",
    "metrics-ingest",
    "metrics-series",
    "metrics-sources",
    "logs",
    "logs-tail",
    "otlp-logs",
    "otlp-metrics",
    "monitor-apply",
    "monitor-list",
    "billing",
    "billing-upgrade",
    "billing-portal",
    "incident-list",
    "alert-rule-list",
    "maintenance-window-list",
    "monitor-dependency-list",
    "channel-list",
    "escalation-policy-list",
    "notification-list",
    "healing-policy-list",
    "healing-attempt-list",
    "status-page-list",
    "status-page-section-list",
    "badge-list",
    "report-sla",
    "report-summary",
    "report-errors",
    "report-settings",
    "report-subscription",
}

#: routes that reach no tenant's data through the gate, each with the reason
PUBLIC_ROUTES: dict[str, str] = {
    "health": "liveness probe: says the process answers, names no tenant",
    "ready": "readiness probe: database and broker reachable, names no tenant",
    "live": "liveness probe for orchestrators, names no tenant",
    "prometheus-django-metrics": "process counters without organization labels",
    "ping": "heartbeat ping: the unguessable token is the credential (tests/monitors/test_pings.py)",
    "ping-action": "heartbeat ping with start/fail/exit code: the token is the credential",
    "auth-register": "creates a new user and their own organization; nobody's data",
    "auth-login": "exchanges a password for the caller's own token",
    "plans": "the public price list, the same for everyone",
    "statuspage": "a published status page is public by design; private ones ask a password",
    "statuspage-json": "the public page's JSON, same rules as the page",
    "statuspage-rss": "the public page's feed, same rules as the page",
    "statuspage-access": "the password form of a private page",
    "statuspage-subscribe": "anyone may subscribe to a public page (double opt-in)",
    "statuspage-confirm": "the signed token in the link is the credential",
    "statuspage-unsubscribe": "the signed token in the link is the credential",
    "badge-status": "a badge's unguessable token is the credential (embedded in READMEs)",
    "badge-uptime": "a badge's unguessable token is the credential",
    "badge-response": "a badge's unguessable token is the credential",
    "badge-shields": "a badge's unguessable token is the credential",
    "billing-webhook": "Stripe's calls, refused unless signed with the endpoint secret",
    "stripe-webhook": "Stripe's calls, refused unless signed with the endpoint secret",
    "djstripe_webhook_by_uuid": "shadowed by stripe-webhook (same path); kept for its namespace",
    "dev-bootstrap": "DEBUG-only local bootstrap, 404 otherwise (tests/tenants/test_dev_bootstrap.py)",
    "schema": "the OpenAPI document: describes the API, holds no data",
    "api-docs": "the Swagger page over the schema, holds no data",
    "landing": "the public front page: what healthorch does and the public price list",
    "invitation-accept": (
        "the unguessable token in the emailed link is the credential; joining also needs the "
        "invited address signed in (tests/accounts/test_invitations.py)"
    ),
    **dict.fromkeys(
        (
            "account_login",
            "account_logout",
            "account_inactive",
            "account_signup",
            "account_reauthenticate",
            "account_email",
            "account_email_verification_sent",
            "account_change_password",
            "account_set_password",
            "account_reset_password",
            "account_confirm_login_code",
            "account_confirm_email",
            "account_reset_password_from_key_done",
            "account_reset_password_from_key",
            "account_reset_password_done",
        ),
        "the caller's own account (allauth): sign-in, sign-up, email, password",
    ),
    "account_sso": "asks for an email and points at that domain's provider; shows no data",
    **dict.fromkeys(
        (
            "openid_connect_login",
            "openid_connect_callback",
            "socialaccount_login_cancelled",
            "socialaccount_login_error",
            "socialaccount_signup",
            "socialaccount_connections",
            "accounts/social/login/cancelled/",
            "accounts/social/login/error/",
            "accounts/social/signup/",
            "accounts/social/connections/",
        ),
        "single sign-on through an organization's provider: only a verified domain's own "
        "people are let in (tests/accounts/test_sso.py)",
    ),
    **dict.fromkeys(
        (
            "mfa_index",
            "mfa_authenticate",
            "mfa_reauthenticate",
            "mfa_activate_totp",
            "mfa_deactivate_totp",
            "mfa_view_recovery_codes",
            "mfa_generate_recovery_codes",
            "mfa_download_recovery_codes",
            "mfa_list_webauthn",
            "mfa_add_webauthn",
            "mfa_reauthenticate_webauthn",
            "mfa_remove_webauthn",
            "mfa_edit_webauthn",
        ),
        "the caller's own second factors (allauth.mfa), never another user's",
    ),
}

#: the console's own pages that are not a ModelAdmin's, each with the reason
CONSOLE_PUBLIC: dict[str, str] = {
    "index": "the dashboard: figures scoped by the member's organizations (tests/console)",
    "login": "the sign-in form",
    "logout": "signs the caller out",
    "password_change": "the caller's own password",
    "password_change_done": "the caller's own password",
    "jsi18n": "translation strings for the admin's scripts",
    "autocomplete": "asks the named ModelAdmin, so the same gate as its changelist",
    "view_on_site": "redirects to the object's public URL; no model of ours defines one",
    "app_list": "lists the ModelAdmins the caller may see (has_module_permission)",
    "switch_organization": "switches among the caller's own memberships only",
    "dashboard_live": "the index's figures alone, same scope as the index (tests/console)",
    "billing": "the caller's own organization's billing; another's id is 404 "
    "(tests/console/test_billing_page.py)",
    "billing_upgrade": "starts a Checkout for the caller's own organization; another's is 404",
    "billing_portal": "opens the portal for the caller's own organization; another's is 404",
    "billing_done": "the caller's own organization's plan after Checkout; another's is 404",
    "telemetry_sources": "the sources of the caller's own organizations; another's is 404 "
    "(tests/console/test_telemetry_pages.py)",
    "telemetry_source": "a source of an organization in the URL, 404 unless the caller's own",
    "telemetry_logs": "the log lines of an organization in the URL, 404 unless the caller's own",
    "telemetry_logs_tail": "the live tail of the same, 404 unless the caller's own",
}

#: console pages a ModelAdmin adds beside its standard ones: operators only, tried by the
#: outsider in tests/tenancy/test_console_outsiders.py
CONSOLE_OPERATOR_PAGES: dict[str, str] = {
    "reports_platform_sla": "/admin/reports/reportsettings/platform-sla/",
    "djstripe_custom_action": "/admin/djstripe/customer/action/_sync_all_instances/customer/",
}


#: console pages a tenant ModelAdmin adds for one of its objects ("<model label>": the page's
#: last path parts after the object id, e.g. act/resolve/): tried by the outsider against A's
#: object in tests/tenancy/test_console_outsiders.py (404 to GET and POST, nothing changed)
CONSOLE_OBJECT_PAGES: dict[str, tuple[str, list[str]]] = {
    "incidents_incident_act": (
        "incidents.Incident",
        ["act/acknowledge/", "act/resolve/", "act/note/", "act/snooze/"],
    ),
    "monitors_monitor_check_now": ("monitors.Monitor", ["check-now/"]),
}


@dataclass(frozen=True)
class Route:
    name: str
    path: str
    pattern: URLPattern

    @property
    def view_class(self) -> type | None:
        callback = self.pattern.callback
        return getattr(callback, "cls", None) or getattr(callback, "view_class", None)

    @property
    def methods(self) -> list[str]:
        """The HTTP methods the route serves (HEAD is GET's; OPTIONS describes, reads none)."""
        actions = getattr(self.pattern.callback, "actions", None)
        if actions:
            return sorted(m for m in actions if m not in ("head", "options"))
        cls = self.view_class
        if cls is None:
            return ["get"]
        return sorted(
            m for m in cls.http_method_names if m not in ("head", "options") and hasattr(cls, m)
        )

    @property
    def kwarg(self) -> str | None:
        names = list(self.pattern.pattern.regex.groupindex)
        assert len(names) <= 1, f"{self.name}: more than one URL argument: {names}"
        return names[0] if names else None


def _walk(patterns, prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        else:
            yield prefix + str(p.pattern), p


def product_routes() -> list[Route]:
    """Every route outside the console, from the resolver."""
    return [
        Route(name=p.name or path, path=path, pattern=p)
        for path, p in _walk(get_resolver().url_patterns)
        if not path.startswith("admin/")
    ]


def gated_routes() -> list[Route]:
    """One route per name (aliases share their name and view) that passes the gate."""
    seen: dict[str, Route] = {}
    for route in product_routes():
        if route.name in OBJECT_ROUTES or route.name in ORGANIZATION_ROUTES:
            seen.setdefault(route.name, route)
    return sorted(seen.values(), key=lambda r: r.name)


def console_site_pages() -> list[str]:
    """Names of the console's pages that belong to no registered ModelAdmin."""
    return [p.name for p in admin.site.get_urls() if isinstance(p, URLPattern) and p.name]


def console_admins() -> list[tuple[str, ModelAdmin]]:
    return sorted(
        ((model._meta.label, model_admin) for model, model_admin in admin.site._registry.items()),
        key=lambda pair: pair[0],
    )


def console_admin_pages() -> list[tuple[str, str]]:
    """(ModelAdmin label, URL name) of every page the ModelAdmins add beside the standard
    changelist/add/history/delete/change/autocomplete."""
    standard = ("changelist", "add", "history", "delete", "change", "autocomplete")
    extra = []
    for label, model_admin in console_admins():
        for _path, p in _walk(model_admin.get_urls()):
            if p.name and not p.name.endswith(tuple(f"_{s}" for s in standard)):
                extra.append((label, p.name))
    return extra
