from django.apps import AppConfig


class HealthorchConfig(AppConfig):
    """The project itself as an app: it connects every seam once all apps are loaded."""

    name = "healthorch"
    label = "healthorch"
    verbose_name = "healthorch"

    def ready(self) -> None:
        from healthorch import wiring

        wiring.connect()
