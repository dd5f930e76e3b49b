from django.apps import AppConfig


class HealingConfig(AppConfig):
    name = "apps.healing"
    label = "healing"

    def ready(self) -> None:
        from apps.healing import actions  # noqa: F401  (registers the built-in actions)
