from django.urls import path, re_path

from apps.reports.api import views

# Documented without a trailing slash; the slash is accepted too.
urlpatterns = [
    re_path(r"^reports/sla/?$", views.SlaReportView.as_view(), name="report-sla"),
    re_path(r"^reports/summary/?$", views.SummaryView.as_view(), name="report-summary"),
    re_path(r"^reports/errors/?$", views.ErrorsView.as_view(), name="report-errors"),
    re_path(r"^reports/settings/?$", views.ReportSettingsView.as_view(), name="report-settings"),
    re_path(
        r"^reports/subscription/?$", views.SubscriptionView.as_view(), name="report-subscription"
    ),
    re_path(
        r"^insights/(?P<monitor_id>[0-9a-f-]{36})/?$",
        views.InsightsView.as_view(),
        name="insights",
    ),
    path(
        "monitors/<uuid:monitor_id>/uptime/",
        views.MonitorUptimeView.as_view(),
        name="monitor-uptime",
    ),
]
