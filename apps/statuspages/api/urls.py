from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.statuspages.api import views

router = SimpleRouter(trailing_slash=True)
router.register("status-pages", views.StatusPageViewSet, basename="status-page")
router.register("status-page-sections", views.SectionViewSet, basename="status-page-section")
router.register("badges", views.BadgeViewSet, basename="badge")

# Beside apps.incidents' router (whose file this app does not edit): same /incidents/{id}/ base.
urlpatterns = [
    *router.urls,
    path(
        "incidents/<uuid:incident_id>/updates",
        views.IncidentUpdatesView.as_view(),
        name="incident-updates",
    ),
    path(
        "incidents/<uuid:incident_id>/postmortem",
        views.PostmortemView.as_view(),
        name="incident-postmortem",
    ),
]
