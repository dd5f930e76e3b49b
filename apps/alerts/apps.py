from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "apps.alerts"
    label = "alerts"

    def ready(self) -> None:
        from apps.alerts.services.channels import apply_plan_features
        from apps.alerts.services.escalation import on_incident_events
        from apps.incidents import events
        from apps.plans.services import register_plan_change_handler

        # Notifications follow incident events in the same transaction (apps/incidents/events.py).
        events.on_incident_events(on_incident_events)
        register_plan_change_handler("alerts", apply_plan_features)
