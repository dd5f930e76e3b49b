from django.urls import path

from apps.billing import webhooks
from apps.billing.api import views

urlpatterns = [
    path("upgrade", views.UpgradeView.as_view(), name="billing-upgrade"),
    path("portal", views.PortalView.as_view(), name="billing-portal"),
    path("webhook", webhooks.billing_webhook, name="billing-webhook"),
]
