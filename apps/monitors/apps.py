from django.apps import AppConfig


class MonitorsConfig(AppConfig):
    name = "apps.monitors"
    label = "monitors"

    def ready(self) -> None:
        from apps.monitors import services
        from apps.plans.models import Limit
        from apps.plans.selectors import register_counter
        from apps.plans.services import register_plan_change_handler

        register_counter(Limit.MONITORS, services.count_active_monitors)
        register_plan_change_handler("monitors", services.apply_plan_limits)
