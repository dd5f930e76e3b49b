"""Public URLs: /status/<slug>/... and /badge/<token>/..."""

from django.urls import path

from apps.statuspages import views

status_urls = [
    path("<slug:slug>/", views.status_page, name="statuspage"),
    path("<slug:slug>/status.json", views.status_json, name="statuspage-json"),
    path("<slug:slug>/feed.rss", views.status_rss, name="statuspage-rss"),
    path("<slug:slug>/access", views.status_access, name="statuspage-access"),
    path("<slug:slug>/subscribe", views.subscribe, name="statuspage-subscribe"),
    path("<slug:slug>/confirm/<str:token>", views.confirm, name="statuspage-confirm"),
    path("<slug:slug>/unsubscribe/<str:token>", views.unsubscribe, name="statuspage-unsubscribe"),
]

badge_urls = [
    path("<str:token>/status.svg", views.badge_svg, {"kind": "status"}, name="badge-status"),
    path("<str:token>/uptime.svg", views.badge_svg, {"kind": "uptime"}, name="badge-uptime"),
    path("<str:token>/response.svg", views.badge_svg, {"kind": "response"}, name="badge-response"),
    path("<str:token>/shields.json", views.badge_shields, name="badge-shields"),
]
