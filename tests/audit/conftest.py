from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_targets_allowed(settings):
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = True


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
