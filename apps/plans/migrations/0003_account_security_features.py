"""Give the default paid plans the account-security features: requiring a second factor (pro
and up) and single sign-on (business and up). Plans an operator made are left alone."""

from django.db import migrations

ADDED = {
    "pro": ["mfa_enforcement"],
    "business": ["mfa_enforcement", "sso"],
    "enterprise": ["mfa_enforcement", "sso"],
}


def add(apps, schema_editor):
    Plan = apps.get_model("plans", "Plan")
    for plan in Plan.objects.filter(code__in=ADDED):
        missing = [f for f in ADDED[plan.code] if f not in plan.features]
        if missing:
            plan.features = [*plan.features, *missing]
            plan.save(update_fields=["features"])


class Migration(migrations.Migration):
    dependencies = [("plans", "0002_seed_plans")]

    operations = [migrations.RunPython(add, migrations.RunPython.noop, hints={"seed": True})]
