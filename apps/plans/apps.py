from django.apps import AppConfig


class PlansConfig(AppConfig):
    name = "apps.plans"
    label = "plans"
    verbose_name = "Plans and usage"

    def ready(self) -> None:
        from apps.plans.models import Limit
        from apps.plans.selectors import register_counter
        from apps.tenants.models import Membership

        register_counter(
            Limit.MEMBERS, lambda org: Membership.objects.filter(organization=org).count()
        )
