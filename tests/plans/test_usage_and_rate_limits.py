import json

import pytest
import time_machine
from django.core.management import call_command
from django.test import Client
from rest_framework.exceptions import Throttled

from apps.plans import services
from apps.plans.metering import api_usage, check_rate
from apps.plans.models import LimitOverride, PlanChange, UsageMetric
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db
USAGE = "/api/v1/usage"
ORG = "/api/v1/organization"


def test_usage_shows_this_periods_counters_next_to_the_limits(client_for, owner, org):
    services.usage_add(org=org, metric=UsageMetric.CHECKS_EXECUTED, amount=42)
    services.usage_add(org=org, metric=UsageMetric.NOTIFICATIONS_SENT, amount=3)
    body = client_for(owner).get(USAGE).json()
    assert body["plan"] == "free"
    assert body["usage"]["members"] == {"used": 1, "limit": 3}
    assert body["usage"]["checks_executed"] == {"used": 42, "limit": None}
    assert body["usage"]["notifications_sent"] == {"used": 3, "limit": 500}
    assert body["limits"]["api_requests_per_minute"] == 60
    assert body["period_start"].endswith("-01")


def test_outsider_sees_only_their_own_usage(client_for, owner, outsider, org, other_org):
    services.usage_add(org=org, metric=UsageMetric.CHECKS_EXECUTED, amount=42)
    MembershipFactory.create_batch(2, organization=org)
    body = client_for(outsider).get(USAGE).json()
    assert body["usage"]["checks_executed"]["used"] == 0
    assert body["usage"]["members"]["used"] == 1
    denied = client_for(outsider, org_slug=org.slug).get(USAGE)
    assert denied.status_code == 404


def test_usage_needs_credentials(anon):
    assert anon.get(USAGE).status_code == 401


def test_api_requests_are_metered(key_client, org):
    client = key_client(org)
    for _ in range(5):
        client.get(ORG)
    api_usage.flush()
    assert client.get(USAGE).json()["usage"]["api_requests"]["used"] == 5


def test_a_key_past_its_plans_rate_gets_429_with_retry_after(key_client, org):
    client = key_client(org)
    with time_machine.travel("2026-03-01T10:00:05Z", tick=False):
        for n in range(60):
            response = client.get(ORG)
            assert response.status_code == 200, n
        assert response["X-RateLimit-Remaining"] == "0"
        throttled = client.get(ORG)
        assert throttled.status_code == 429
        assert throttled["Retry-After"] == "55"
        assert throttled.json()["error"] == "Too many requests"
    # The next minute is a new window.
    with time_machine.travel("2026-03-01T10:01:01Z", tick=False):
        assert client.get(ORG).status_code == 200


def test_rate_limits_are_per_key(key_client, org):
    first, second = key_client(org), key_client(org)
    with time_machine.travel("2026-03-01T10:00:00Z", tick=False):
        for _ in range(60):
            first.get(ORG)
        assert first.get(ORG).status_code == 429
        assert second.get(ORG).status_code == 200


def test_a_bigger_plan_raises_the_rate(key_client, org):
    services.organization_change_plan(org=org, plan_code="pro", source="test")
    client = key_client(org)
    response = client.get(ORG)
    assert response["X-RateLimit-Limit"] == "600"


def test_check_rate_counts_exactly_in_a_window():
    for used in range(1, 4):
        headers = check_rate(ident="t", per_minute=3, now=120.0)
        assert headers["X-RateLimit-Remaining"] == str(3 - used)
    with pytest.raises(Throttled) as exc:
        check_rate(ident="t", per_minute=3, now=125.0)
    assert exc.value.wait == 55
    assert check_rate(ident="t", per_minute=None) == {}


def test_usage_report_prints_a_table_and_json(org, other_org, capsys):
    services.usage_add(org=org, metric=UsageMetric.CHECKS_EXECUTED, amount=9)
    call_command("usage_report")
    table = capsys.readouterr().out
    assert "acme" in table
    assert "globex" in table
    assert "checks_executed" in table
    call_command("usage_report", "--json")
    doc = {row["organization"]: row for row in json.loads(capsys.readouterr().out)}
    assert doc["acme"]["usage"]["checks_executed"]["used"] == 9
    assert doc["globex"]["plan"] == "free"


def _operator(django_user_model) -> Client:
    user = django_user_model.objects.create_superuser("op@example.test", "op@example.test", "pw")
    client = Client()
    client.force_login(user)
    return client, user


def test_changing_the_plan_in_the_admin_goes_through_the_service(django_user_model, org):
    client, operator = _operator(django_user_model)
    response = client.post(
        f"/admin/tenants/organization/{org.pk}/change/",
        {
            "name": "Acme",
            "slug": "acme",
            "plan": "business",
            "billing_email": "",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    change = PlanChange.objects.get(organization=org)
    assert (change.from_plan, change.to_plan, change.source, change.actor) == (
        "free",
        "business",
        "admin",
        operator,
    )
    page = client.get(f"/admin/tenants/organization/{org.pk}/change/").content.decode()
    assert "members: 0 / 50" in page


def test_operator_sets_an_override_in_the_admin(django_user_model, org):
    client, operator = _operator(django_user_model)
    response = client.post(
        "/admin/plans/limitoverride/add/",
        {"organization": org.pk, "limit": "members", "value": "7", "reason": "pilot"},
    )
    assert response.status_code == 302
    override = LimitOverride.objects.get(organization=org)
    assert (override.value, override.created_by) == (7, operator)


def test_tenants_see_their_own_plan_history_but_not_plans_or_overrides(owner, org, other_org):
    services.organization_change_plan(org=org, plan_code="pro", source="test")
    services.organization_change_plan(org=other_org, plan_code="business", source="test")
    owner.is_staff = True
    owner.save()
    client = Client()
    client.force_login(owner)
    history = client.get("/admin/plans/planchange/").content.decode()
    assert "Acme" in history
    assert "Globex" not in history
    assert client.get("/admin/plans/plan/").status_code == 403
    assert client.get("/admin/plans/limitoverride/").status_code == 403
    other = other_org.plan_changes.get()
    assert client.get(f"/admin/plans/planchange/{other.pk}/change/").status_code == 404
