"""The operators' platform-wide view: selector, admin page (operators only), command."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command

from apps.plans.services import organization_change_plan
from apps.reports.selectors import platform_sla_overview
from tests.factories import OrganizationFactory, UserFactory
from tests.reports.support import hour_rollups, make_monitor

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)


@pytest.fixture
def platform(org, other_org):
    """acme (free, 99 % target) at 99.5 %, globex (pro, 99.5 %) at 98 %, a third at 100 %."""
    organization_change_plan(org=other_org, plan_code="pro", source="test")
    third = OrganizationFactory(name="Initech", slug="initech")
    hour = NOW - timedelta(hours=5)
    for o, down in ((org, 1), (other_org, 4), (third, 0)):
        m = make_monitor(o, f"m-{o.slug}", interval=300)
        hour_rollups(m, {hour: {"up": 200 - down, "down": down}})
    return third


def test_the_overview_counts_compliant_organizations_and_lists_the_worst(platform):
    overview = platform_sla_overview(now=NOW)
    assert overview["organizations"] == 3
    assert (overview["compliant"], overview["non_compliant"]) == (2, 1)
    assert overview["average_availability_pct"] == round((99.5 + 98 + 100) / 3, 4)
    assert [r["organization"] for r in overview["worst"]] == ["globex", "acme", "initech"]
    assert overview["worst"][0]["compliant"] is False


def test_the_admin_page_is_for_operators_only(client, platform, org, member):
    operator = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(operator)
    with time_machine.travel(NOW, tick=False):
        page = client.get("/admin/reports/reportsettings/platform-sla/")
    assert page.status_code == 200
    assert b"globex" in page.content
    assert b"meeting their plan" in page.content

    # A tenant member with console access sees their organization, never the platform.
    member.is_staff = True
    member.save()
    client.force_login(member)
    assert client.get("/admin/reports/reportsettings/platform-sla/").status_code == 404


def test_the_command_prints_the_overview(platform):
    out = StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("slaoverview", "--json", stdout=out)
    assert json.loads(out.getvalue())["compliant"] == 2
    out = StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("slaoverview", stdout=out)
    assert "3 organizations, 2 meet their plan's target" in out.getvalue()


def test_report_settings_in_the_console_are_scoped_to_the_members_organization(
    client, org, outsider
):
    from apps.reports.models import ReportSettings

    ours = ReportSettings.objects.create(organization=org, schedule="weekly")
    outsider.is_staff = True
    outsider.save()
    client.force_login(outsider)
    assert client.get(f"/admin/reports/reportsettings/{ours.pk}/change/").status_code == 404
    listing = client.get("/admin/reports/reportsettings/")
    assert listing.status_code == 200
    assert str(ours.pk) not in listing.content.decode()
