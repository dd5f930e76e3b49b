from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "apps.incidents"
    label = "incidents"

    def ready(self) -> None:
        from apps.incidents import machine
        from apps.monitors import state

        state.on_status_changes(machine.handle_status_changes)
        state.on_fold(machine.handle_fold)
