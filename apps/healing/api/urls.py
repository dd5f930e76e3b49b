from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.healing.api import views

router = SimpleRouter(trailing_slash=True)
router.register("healing-policies", views.HealingPolicyViewSet, basename="healing-policy")
router.register("healing-attempts", views.HealingAttemptViewSet, basename="healing-attempt")
urlpatterns = [
    path("incidents/<uuid:pk>/heal", views.IncidentHealView.as_view(), name="incident-heal"),
    path(
        "incidents/<uuid:pk>/root-cause",
        views.IncidentRootCauseView.as_view(),
        name="incident-root-cause",
    ),
    *router.urls,
]
