from __future__ import annotations

import pytest

from apps.plans.services import organization_change_plan


@pytest.fixture(autouse=True)
def _private_targets_allowed(settings):
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = True


@pytest.fixture
def business(org):
    organization_change_plan(org=org, plan_code="business", source="test")
    return org


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_superuser("op@example.test", "op@example.test", "pw")


def console(user):
    """A browser-less console session: tenant members are staff users with a membership."""
    from django.test import Client

    if not user.is_superuser and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(user)
    return client


def form_data(page) -> dict:
    """The values an admin change form would post back unchanged (from its rendered form)."""
    form = page.context["adminform"].form
    data = {}
    for name in form.fields:
        value = form[name].value()
        if value is None or value is False:
            continue
        data[name] = "on" if value is True else value
    return data


def the_entry(action: str):
    """The one audit entry with this action (fails on none or several)."""
    from apps.audit.models import AuditEntry

    [entry] = AuditEntry.objects.filter(action=action)
    return entry
