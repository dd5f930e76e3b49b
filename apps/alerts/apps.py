from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "apps.alerts"
    label = "alerts"

    def ready(self) -> None:
        from apps.alerts.services.escalation import on_incident_event
        from apps.incidents import events

        # Notifications follow incident events in the same transaction (apps/incidents/events.py).
        events.on_incident_event(on_incident_event)
