"""The console is the top floor: it may import every app and no app imports it.

Two app configs live here. `ConsoleAdminConfig` is Django's admin with healthorch's site as
`admin.site` (so every `@admin.register` lands on the site that draws the dashboard and lets
tenant members in); `ConsoleConfig` is the console's own app (its management commands).
"""

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class ConsoleAdminConfig(AdminConfig):
    default_site = "apps.console.site.ConsoleSite"


class ConsoleConfig(AppConfig):
    name = "apps.console"
    label = "console"
    verbose_name = "Console"
