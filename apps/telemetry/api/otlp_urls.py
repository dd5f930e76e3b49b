"""OTLP/HTTP's default paths, at the root as exporters expect (`<endpoint>/v1/logs`)."""

from django.urls import path

from apps.telemetry.api import otlp_views

urlpatterns = [
    path("logs", otlp_views.OtlpLogsView.as_view(), name="otlp-logs"),
    path("metrics", otlp_views.OtlpMetricsView.as_view(), name="otlp-metrics"),
]
