from django.apps import AppConfig

from apps.core import partitions


class MonitorsConfig(AppConfig):
    name = "apps.monitors"
    label = "monitors"

    def ready(self) -> None:
        partitions.ensure_after_migrate(self, "apps.monitors.retention.partitions_ensure")
