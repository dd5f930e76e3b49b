from django.urls import path

from apps.plans.api import views

urlpatterns = [
    path("plans", views.PlanListView.as_view(), name="plans"),
]
