import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.utils import timezone

from apps.core.errors import UpgradeRequired
from apps.plans import events, services
from apps.plans.models import Limit, PlanChange, UsageCounter, UsageMetric
from apps.plans.selectors import current_period, entitlements_for
from apps.tenants.models import Membership, Organization, Role
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db
MEMBERS = "/api/v1/members/"


def _fill_members(org, count):
    MembershipFactory.create_batch(count, organization=org, role=Role.MEMBER)


def test_the_member_limit_answers_402_with_the_exact_body(client_for, owner, org):
    _fill_members(org, 2)  # owner + 2 = the free plan's 3
    UserFactory(email="fourth@example.test")
    response = client_for(owner).post(MEMBERS, {"email": "fourth@example.test"}, format="json")
    assert response.status_code == 402
    assert response.json() == {
        "error": "Upgrade Required",
        "feature": "members",
        "current_plan": "free",
        "limit": 3,
        "used": 3,
    }
    assert Membership.objects.filter(organization=org).count() == 3


def test_a_locked_feature_raises_upgrade_required_naming_it(org):
    with pytest.raises(UpgradeRequired) as exc:
        services.require_feature(org=org, feature="auto_orchestration")
    assert exc.value.as_body() == {
        "error": "Upgrade Required",
        "feature": "auto_orchestration",
        "current_plan": "free",
    }
    services.require_feature(org=org, feature="health_checks")  # included: no error


@pytest.mark.parametrize(
    ("plan", "feature", "allowed"),
    [
        ("free", "integrations", False),
        ("pro", "integrations", True),
        ("pro", "ml_healing", False),
        ("business", "ml_healing", True),
        ("business", "audit_logs", True),
        ("enterprise", "status_pages", True),
    ],
)
def test_each_plan_unlocks_its_features(plan, feature, allowed):
    org = OrganizationFactory(plan_id=plan)
    if allowed:
        services.require_feature(org=org, feature=feature)
    else:
        with pytest.raises(UpgradeRequired):
            services.require_feature(org=org, feature=feature)


def test_the_minimum_interval_follows_the_plan(org):
    with pytest.raises(UpgradeRequired) as exc:
        services.require_interval(org=org, seconds=60)
    assert exc.value.as_body()["feature"] == "min_interval_seconds"
    assert exc.value.limit == 300
    services.require_interval(org=org, seconds=300)
    services.organization_change_plan(org=org, plan_code="pro", source="test")
    services.require_interval(org=org, seconds=60)


def test_upgrading_unblocks_at_once(client_for, owner, org):
    _fill_members(org, 2)
    UserFactory(email="fourth@example.test")
    client = client_for(owner)
    assert client.post(MEMBERS, {"email": "fourth@example.test"}, format="json").status_code == 402
    services.organization_change_plan(org=org, plan_code="pro", source="test")
    assert client.post(MEMBERS, {"email": "fourth@example.test"}, format="json").status_code == 201


def test_an_operator_override_lifts_a_limit_until_it_expires(client_for, owner, org):
    _fill_members(org, 2)
    for n in range(3):
        UserFactory(email=f"extra{n}@example.test")
    expires = timezone.now() + timedelta(days=1)
    services.limit_override_set(
        org=org, limit=Limit.MEMBERS, value=4, reason="pilot customer", expires_at=expires
    )
    client = client_for(owner)
    assert client.post(MEMBERS, {"email": "extra0@example.test"}, format="json").status_code == 201
    refused = client.post(MEMBERS, {"email": "extra1@example.test"}, format="json")
    assert refused.status_code == 402
    assert refused.json()["limit"] == 4
    Membership.objects.filter(user__email="extra0@example.test").delete()
    with time_machine.travel(expires + timedelta(minutes=1)):
        after = client.post(MEMBERS, {"email": "extra2@example.test"}, format="json")
    assert after.status_code == 402
    assert after.json()["limit"] == 3


def test_an_unlimited_override(org):
    services.limit_override_set(org=org, limit=Limit.MEMBERS, value=None, reason="partner")
    assert entitlements_for(org).limit(Limit.MEMBERS) is None
    assert entitlements_for(org).overridden == frozenset({"members"})


def test_an_override_needs_a_reason(org):
    from apps.core.errors import ServiceError

    with pytest.raises(ServiceError):
        services.limit_override_set(org=org, limit=Limit.MEMBERS, value=9, reason=" ")


@pytest.mark.django_db(transaction=True)  # the ordinary test transaction would hide the bug
def test_reserving_a_counted_limit_outside_a_transaction_is_a_bug():
    org = OrganizationFactory()
    with pytest.raises(RuntimeError):
        services.reserve(org=org, limit=Limit.MEMBERS)


def test_notifications_are_reserved_up_to_the_monthly_cap(org):
    services.limit_override_set(org=org, limit=Limit.NOTIFICATIONS_PER_MONTH, value=5, reason="t")
    services.reserve(org=org, limit=Limit.NOTIFICATIONS_PER_MONTH, amount=3)
    services.reserve(org=org, limit=Limit.NOTIFICATIONS_PER_MONTH, amount=2)
    with pytest.raises(UpgradeRequired) as exc:
        services.reserve(org=org, limit=Limit.NOTIFICATIONS_PER_MONTH)
    assert (exc.value.limit, exc.value.used) == (5, 5)
    start, _ = current_period()
    counter = UsageCounter.objects.get(organization=org, period_start=start)
    assert (counter.metric, counter.value) == (UsageMetric.NOTIFICATIONS_SENT, 5)


def test_usage_counts_per_calendar_month(org):
    with time_machine.travel("2026-01-31T23:59:00Z"):
        services.usage_add(org=org, metric=UsageMetric.CHECKS_EXECUTED, amount=7)
    with time_machine.travel("2026-02-01T00:01:00Z"):
        services.usage_add(org=org, metric=UsageMetric.CHECKS_EXECUTED, amount=2)
    rows = dict(UsageCounter.objects.filter(organization=org).values_list("period_start", "value"))
    assert {str(k): v for k, v in rows.items()} == {"2026-01-01": 7, "2026-02-01": 2}


def test_a_plan_change_is_recorded_with_its_source(org, owner):
    change = services.organization_change_plan(
        org=org, plan_code="business", source="evt_123", actor=owner, reason="upgrade"
    )
    assert (change.from_plan, change.to_plan, change.source) == ("free", "business", "evt_123")
    assert Organization.objects.get(pk=org.pk).plan_id == "business"
    assert services.organization_change_plan(org=org, plan_code="business", source="x") is None
    assert PlanChange.objects.filter(organization=org).count() == 1


def test_plan_change_handlers_run_in_the_same_transaction_and_are_recorded(org):
    calls = []

    def handler(*, org, old_plan, new_plan):
        calls.append((old_plan.code, new_plan.code))
        return {"paused": 2} if new_plan.code == "free" else {}

    events.on_plan_change("test-handler", handler)
    try:
        services.organization_change_plan(org=org, plan_code="pro", source="t")
        change = services.organization_change_plan(org=org, plan_code="free", source="t")
    finally:
        events.plan_change_handlers.pop("test-handler")
    assert calls == [("free", "pro"), ("pro", "free")]
    assert change.effects == {"test-handler": {"paused": 2}}


def test_editing_a_plan_reaches_cached_entitlements(org, django_capture_on_commit_callbacks):
    assert entitlements_for(org).limit(Limit.MEMBERS) == 3
    plan = org.plan
    plan.members = 4
    with django_capture_on_commit_callbacks(execute=True):
        plan.save()
        services.plan_saved()
    fresh = Organization.objects.select_related("plan").get(pk=org.pk)
    assert entitlements_for(fresh).limit(Limit.MEMBERS) == 4


postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="concurrency needs PostgreSQL row locks"
)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_requests_racing_for_the_last_slot_cannot_both_win():
    org = OrganizationFactory()
    MembershipFactory.create_batch(2, organization=org)  # 2 of 3 used
    users = UserFactory.create_batch(6)
    barrier = threading.Barrier(len(users))
    outcomes = []

    def add(user):
        barrier.wait()
        try:
            with transaction.atomic():
                services.reserve(org=org, limit=Limit.MEMBERS)
                Membership.objects.create(organization=org, user=user)
            outcomes.append("won")
        except UpgradeRequired:
            outcomes.append("402")
        finally:
            connection.close()

    threads = [threading.Thread(target=add, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(outcomes) == ["402"] * 5 + ["won"]
    assert Membership.objects.filter(organization=org).count() == 3


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_usage_increments_under_concurrency_lose_nothing():
    org = OrganizationFactory()
    threads_n, per_thread = 8, 25
    barrier = threading.Barrier(threads_n)

    def bump():
        barrier.wait()
        try:
            for _ in range(per_thread):
                services.usage_add(org=org, metric=UsageMetric.CHECKS_EXECUTED, amount=2)
        finally:
            connection.close()

    threads = [threading.Thread(target=bump) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    start, _ = current_period()
    counter = UsageCounter.objects.get(organization=org, period_start=start)
    assert counter.value == threads_n * per_thread * 2


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_notification_reservations_never_pass_the_cap():
    org = OrganizationFactory()
    services.limit_override_set(org=org, limit=Limit.NOTIFICATIONS_PER_MONTH, value=50, reason="t")
    barrier = threading.Barrier(8)
    granted = []

    def take():
        barrier.wait()
        try:
            for _ in range(10):
                try:
                    services.reserve(org=org, limit=Limit.NOTIFICATIONS_PER_MONTH)
                    granted.append(1)
                except UpgradeRequired:
                    pass
        finally:
            connection.close()

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(granted) == 50
    start, _ = current_period()
    assert UsageCounter.objects.get(organization=org, period_start=start).value == 50


def _without(org, feature):
    plan = org.plan
    plan.features = [f for f in plan.features if f != feature]
    plan.save()
    services.plan_saved()
    from apps.plans.selectors import invalidate_entitlements

    invalidate_entitlements()


def test_a_plan_without_metrics_ingestion_gets_402_from_the_metrics_api(key_client, org):
    _without(org, "metrics_ingestion")
    response = key_client(org).post(
        "/api/v1/metrics", {"source": "a", "metrics": {"x": 1}}, format="json"
    )
    assert response.status_code == 402
    assert response.json() == {
        "error": "Upgrade Required",
        "feature": "metrics_ingestion",
        "current_plan": "free",
    }


def test_a_plan_without_health_checks_gets_402_from_the_monitors_api(client_for, member, org):
    _without(org, "health_checks")
    body = {"name": "x", "kind": "http", "config": {"url": "http://127.0.0.1:9/"}}
    response = client_for(member).post("/api/v1/monitors/", body, format="json")
    assert response.status_code == 402
    assert response.json() == {
        "error": "Upgrade Required",
        "feature": "health_checks",
        "current_plan": "free",
    }
