from django.contrib.admin.apps import AdminConfig


class ConsoleAdminConfig(AdminConfig):
    """Django's admin app with our site as `admin.site`, so every `@admin.register` lands on
    the site that draws the dashboard and lets tenant members in."""

    default_site = "apps.core.console.site.ConsoleSite"
