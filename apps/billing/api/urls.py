from django.urls import path

from apps.billing.api import views

urlpatterns = [
    path("billing", views.BillingView.as_view(), name="billing"),
]
