from django.urls import path

from apps.telemetry.api import views

urlpatterns = [
    path("logs", views.LogsView.as_view(), name="logs"),
    path("logs/tail", views.LogTailView.as_view(), name="logs-tail"),
    path("metrics/series", views.MetricSeriesView.as_view(), name="metrics-series"),
    path("metrics/sources", views.MetricSourcesView.as_view(), name="metrics-sources"),
]
