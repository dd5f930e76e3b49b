from django.apps import AppConfig

from apps.core import partitions


class TelemetryConfig(AppConfig):
    name = "apps.telemetry"
    label = "telemetry"

    def ready(self) -> None:
        # The log table's, as monitors does for results.
        partitions.ensure_after_migrate(self, "apps.telemetry.services.log_partitions_ensure")
