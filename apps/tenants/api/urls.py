from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.tenants.api import audit_log, views

router = SimpleRouter(trailing_slash=True)
router.register("members", views.MemberViewSet, basename="member")
router.register("api-keys", views.ApiKeyViewSet, basename="api-key")
router.register("invitations", views.InvitationViewSet, basename="invitation")
router.register("audit-log", audit_log.AuditLogViewSet, basename="audit-log")

urlpatterns = [
    path("auth/register", views.RegisterView.as_view(), name="auth-register"),
    path("auth/login", views.LoginView.as_view(), name="auth-login"),
    path("organization", views.OrganizationView.as_view(), name="organization"),
    path("usage", views.UsageView.as_view(), name="usage"),
    *router.urls,
]
