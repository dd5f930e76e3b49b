from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.monitors.api import views

router = SimpleRouter(trailing_slash=True)
router.register("monitors", views.MonitorViewSet, basename="monitor")
urlpatterns = [
    path("metrics", views.MetricsIngestView.as_view(), name="metrics-ingest"),
    # The documented path has no trailing slash; the router's `monitors/apply/` works too.
    path(
        "monitors/apply",
        views.MonitorApplyAliasViewSet.as_view({"post": "apply"}),
        name="monitor-apply",
    ),
    *router.urls,
]
