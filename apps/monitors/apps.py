from django.apps import AppConfig
from django.db.models.signals import post_migrate


class MonitorsConfig(AppConfig):
    name = "apps.monitors"
    label = "monitors"

    def ready(self) -> None:
        # Every `migrate` makes the day partitions ahead too, so a database that was down
        # longer than beat's week ahead is whole again before the workers start writing.
        post_migrate.connect(_partitions_ahead, sender=self, dispatch_uid="monitors-partitions")


def _partitions_ahead(*, using: str = "default", **_: object) -> None:
    from django.db import connections

    from apps.monitors import retention

    if using == "default" and connections[using].vendor == "postgresql":
        retention.partitions_ensure()
