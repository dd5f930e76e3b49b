from rest_framework.routers import SimpleRouter

from apps.audit.api import views

router = SimpleRouter(trailing_slash=True)
router.register("audit-log", views.AuditLogViewSet, basename="audit-log")
urlpatterns = router.urls
