from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apps.accounts import views as account_views
from apps.billing.webhooks import VerifiedWebhookView
from apps.core import views as core_views
from apps.monitors import views as monitor_views
from apps.statuspages.urls import badge_urls, status_urls
from apps.tenants.api.views import DevBootstrapView

api_v1 = [
    path("", include("apps.tenants.api.urls")),
    path("", include("apps.accounts.api.urls")),
    path("", include("apps.plans.api.urls")),
    path("", include("apps.monitors.api.urls")),
    path("", include("apps.telemetry.api.urls")),
    path("", include("apps.billing.api.urls")),
    path("", include("apps.incidents.api.urls")),
    path("", include("apps.alerts.api.urls")),
    path("", include("apps.healing.api.urls")),
    path("", include("apps.statuspages.api.urls")),
    path("", include("apps.reports.api.urls")),
]

urlpatterns = [
    path("", account_views.landing, name="landing"),
    path("health", core_views.health, name="health"),
    path("ready", core_views.ready, name="ready"),
    path("live", core_views.live, name="live"),
    path("", include("django_prometheus.urls")),  # /metrics
    path("ping/<uuid:token>", monitor_views.ping, name="ping"),
    path("ping/<uuid:token>/<str:action>", monitor_views.ping, name="ping-action"),
    path("api/v1/", include(api_v1)),
    # OpenTelemetry exporters post to <endpoint>/v1/logs and /v1/metrics (OTLP/HTTP)
    path("v1/", include("apps.telemetry.api.otlp_urls")),
    path("status/", include(status_urls)),
    path("badge/", include(badge_urls)),
    path("billing/", include("apps.billing.urls")),
    # dj-stripe's webhook path, served by a view that checks the signature before storing
    # anything; dj-stripe's own URLs stay included for its namespace.
    path(
        "stripe/webhook/<uuid:uuid>/" if settings.APPEND_SLASH else "stripe/webhook/<uuid:uuid>",
        VerifiedWebhookView.as_view(),
        name="stripe-webhook",
    ),
    path("stripe/", include("djstripe.urls", namespace="djstripe")),
    path("api/dev/bootstrap", DevBootstrapView.as_view(), name="dev-bootstrap"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # Accounts (apps/accounts): allauth's pages, with healthorch's sign-in (the login
    # throttle's 429) in front of allauth's own at the same address.
    path("accounts/login/", account_views.login, name="account_login"),
    path("accounts/invitations/<str:token>/", account_views.invitation, name="invitation-accept"),
    path("accounts/sso/", account_views.sso, name="account_sso"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
]


def handler404(request, exception=None):
    """JSON for API paths, Django's page elsewhere (the admin and docs are HTML)."""
    if request.path.startswith("/api/"):
        return core_views.json_not_found(request, exception)
    return defaults.page_not_found(request, exception)


def handler500(request):
    if request.path.startswith("/api/"):
        return core_views.json_server_error(request)
    return defaults.server_error(request)


admin.site.site_header = "healthorch console"
admin.site.site_title = "healthorch"
admin.site.index_title = "Operations"
# The console's "View site" link: the public front page.
admin.site.site_url = "/"
