from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.alerts.api import views

router = SimpleRouter(trailing_slash=True)
router.register("channels", views.ChannelViewSet, basename="channel")
router.register("escalation-policies", views.EscalationPolicyViewSet, basename="escalation-policy")
router.register("notifications", views.NotificationViewSet, basename="notification")
urlpatterns = [
    # The documented path has no trailing slash; the router's `channels/{id}/test/` works too.
    path(
        "channels/<uuid:pk>/test",
        views.ChannelTestAliasViewSet.as_view({"post": "test"}),
        name="channel-test-alias",
    ),
    *router.urls,
]
