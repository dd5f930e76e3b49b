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
