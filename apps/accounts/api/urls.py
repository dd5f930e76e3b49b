from django.urls import path

from apps.accounts.api import views

urlpatterns = [path("sso", views.SingleSignOnView.as_view(), name="sso")]
