import pytest

from apps.plans.services import organization_change_plan


@pytest.fixture
def pro_org(org):
    """The organization on a plan with `sla_reports` (target 99.5 %)."""
    organization_change_plan(org=org, plan_code="pro", source="test")
    org.refresh_from_db()
    return org
