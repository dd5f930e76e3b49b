from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TelemetryConfig(AppConfig):
    name = "apps.telemetry"
    label = "telemetry"

    def ready(self) -> None:
        # Every `migrate` makes the log table's day partitions ahead too (as monitors does
        # for results), so writes never wait for beat after a long stop.
        post_migrate.connect(_partitions_ahead, sender=self, dispatch_uid="telemetry-partitions")


def _partitions_ahead(*, using: str = "default", **_: object) -> None:
    from django.db import connections

    from apps.telemetry import services

    if using == "default" and connections[using].vendor == "postgresql":
        services.log_partitions_ensure()
