from django.apps import AppConfig


class StatusPagesConfig(AppConfig):
    name = "apps.statuspages"
    label = "statuspages"
    verbose_name = "Status pages"
