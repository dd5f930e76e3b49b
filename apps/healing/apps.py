from django.apps import AppConfig


class HealingConfig(AppConfig):
    name = "apps.healing"
    label = "healing"

    def ready(self) -> None:
        from apps.healing import actions  # noqa: F401  (registers the built-in actions)
        from apps.healing.services import on_incident_event, policy_presence_prime
        from apps.incidents import events
        from apps.monitors import state

        # Decisions follow incident events in the same transaction (apps/incidents/events.py).
        events.on_incident_event(on_incident_event)
        # One query per batch of status changes says which organizations have policies.
        state.on_status_changes(policy_presence_prime)
