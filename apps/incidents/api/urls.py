from rest_framework.routers import SimpleRouter

from apps.incidents.api import views

router = SimpleRouter(trailing_slash=True)
router.register("incidents", views.IncidentViewSet, basename="incident")
router.register("alert-rules", views.AlertRuleViewSet, basename="alert-rule")
router.register(
    "maintenance-windows", views.MaintenanceWindowViewSet, basename="maintenance-window"
)
router.register("monitor-dependencies", views.DependencyViewSet, basename="monitor-dependency")
urlpatterns = router.urls
