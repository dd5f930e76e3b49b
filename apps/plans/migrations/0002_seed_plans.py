"""Seed the default plans. Existing rows (operators may have edited them) are left alone."""

from django.db import migrations


def seed(apps, schema_editor):
    from apps.plans.defaults import DEFAULT_PLANS

    Plan = apps.get_model("plans", "Plan")
    # Limits added by later migrations are not columns yet when this runs in a replayed
    # history; those migrations set them.
    known = {f.name for f in Plan._meta.get_fields()}
    for spec in DEFAULT_PLANS:
        code = spec["code"]
        defaults = {k: v for k, v in spec.items() if k != "code" and k in known}
        Plan.objects.get_or_create(code=code, defaults=defaults)


class Migration(migrations.Migration):
    dependencies = [("plans", "0001_initial")]

    # A seed: a database built fresh from the final state runs it too (apps.core.schema_build).
    operations = [migrations.RunPython(seed, migrations.RunPython.noop, hints={"seed": True})]
