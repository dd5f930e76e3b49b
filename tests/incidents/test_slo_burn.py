"""The slo_burn rule: multiwindow, multi-burn-rate alerts on a monitor's error budget (fast:
14.4x over 1 h and 5 min; slow: 6x over 6 h and 30 min), with the budget left and the time to
exhaustion in what people are told, resolved when the burning stops."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.incidents.models import AlertRule, Incident, IncidentStatus, RuleKind, Severity
from apps.incidents.rules import DEFAULTS
from apps.incidents.slo import slo_burn_sweep
from apps.monitors import rollups, slo
from apps.monitors.checkers.base import Outcome
from apps.monitors.models import CheckResult
from tests.factories import OrganizationFactory, make_monitor
from tests.incidents.conftest import notified

pytestmark = pytest.mark.django_db
NOW = timezone.now().replace(minute=30, second=0, microsecond=0)


def checks(monitor, *, minutes: int, failing_every: int | None, until=NOW, step: int = 1):
    """One result a `step` minutes over the `minutes` before `until`; every
    `failing_every`-th one down (None: all up; 1: all down)."""
    rows = []
    for i in range(0, minutes, step):
        failed = failing_every is not None and i % failing_every == 0
        rows.append(
            CheckResult(
                monitor=monitor,
                organization_id=monitor.organization_id,
                checked_at=until - timedelta(minutes=i, seconds=30),
                outcome=Outcome.DOWN if failed else Outcome.UP,
                response_time_ms=None if failed else 20.0,
            )
        )
    CheckResult.objects.bulk_create(rows)


def _rule(org, **fields):
    d = DEFAULTS[RuleKind.SLO_BURN]
    values = {"enabled": d.enabled, "severity": d.severity, **fields}
    return AlertRule.objects.create(organization=org, kind=RuleKind.SLO_BURN, **values)


def test_a_fast_burn_opens_a_critical_incident_saying_how_much_budget_is_left(org, published):
    monitor = make_monitor(org, "payments", slo_target_pct=Decimal("99"))
    # 1 in 4 checks down for the last hour: 25% errors on a 1% budget, 25x over 1 h and 5 min.
    checks(monitor, minutes=60, failing_every=4)

    assert slo_burn_sweep(now=NOW)["opened"] == 1

    incident = Incident.objects.get(rule=RuleKind.SLO_BURN)
    assert incident.severity == Severity.CRITICAL
    assert incident.cause["burn"] == "fast"
    assert incident.cause["burn_rates"]["1h"] == 25.0
    assert incident.cause["target_pct"] == 99.0
    assert incident.title.startswith("payments burns its error budget 25.0x too fast (fast, 1h)")
    assert "% of its 30-day error budget left" in incident.title
    assert notified(published) == [("slo_burn", "opened")]
    # Still burning a minute later: the same incident, not a second one.
    assert slo_burn_sweep(now=NOW + timedelta(minutes=1))["opened"] == 0
    assert Incident.objects.filter(rule=RuleKind.SLO_BURN).count() == 1


def test_a_slow_burn_alone_opens_a_warning(org):
    monitor = make_monitor(org, slo_target_pct=Decimal("99"))
    # 1 in 12 down for 6 hours (8.3x) is a slow burn; under 14.4x, so not fast.
    checks(monitor, minutes=360, failing_every=12)

    assert slo_burn_sweep(now=NOW)["opened"] == 1
    incident = Incident.objects.get(rule=RuleKind.SLO_BURN)
    assert (incident.severity, incident.cause["burn"]) == (Severity.WARNING, "slow")
    assert incident.cause["burn_rates"]["6h"] == pytest.approx(8.33, abs=0.01)


def test_a_short_blip_pages_nobody(org):
    monitor = make_monitor(org, slo_target_pct=Decimal("99"))
    checks(monitor, minutes=360, failing_every=None, until=NOW - timedelta(minutes=5))
    checks(monitor, minutes=5, failing_every=1)  # five minutes all down: 100x over 5 min,
    # but 8.3x over the hour (not fast) and 1.4x over 6 hours (not slow)

    assert slo.slo_burns(monitors=[monitor], now=NOW)[monitor.pk].rate("5m") == pytest.approx(100)
    assert slo_burn_sweep(now=NOW) == {"opened": 0, "resolved": 0, "evaluated": 1}


def test_the_incident_resolves_once_the_short_windows_are_clean(org, published):
    monitor = make_monitor(org, slo_target_pct=Decimal("99"))
    checks(monitor, minutes=60, failing_every=4)
    slo_burn_sweep(now=NOW)
    # Forty clean minutes later: the last 5 and 30 minutes are clean, both conditions fail.
    later = NOW + timedelta(minutes=40)
    checks(monitor, minutes=40, failing_every=None, until=later)

    assert slo_burn_sweep(now=later)["resolved"] == 1
    assert Incident.objects.get(rule=RuleKind.SLO_BURN).status == IncidentStatus.RESOLVED
    assert notified(published) == [("slo_burn", "opened"), ("slo_burn", "resolved")]


def test_the_plan_target_applies_unless_the_monitor_sets_its_own(org):
    lenient = make_monitor(org, "lenient", slo_target_pct=Decimal("50"))
    planned = make_monitor(org, "planned")  # the free plan's 99.0 %
    for monitor in (lenient, planned):
        checks(monitor, minutes=60, failing_every=4)

    slo_burn_sweep(now=NOW)

    assert list(Incident.objects.values_list("monitor__name", flat=True)) == ["planned"]
    burns = slo.slo_burns(monitors=[lenient, planned], now=NOW)
    assert burns[lenient.pk].rate("1h") == 0.5  # 25% errors on a 50% budget
    assert burns[planned.pk].target_pct == float(org.plan.sla_availability_pct)


def test_a_disabled_rule_opens_nothing_and_resolves_what_was_open(org):
    monitor = make_monitor(org, slo_target_pct=Decimal("99"))
    checks(monitor, minutes=60, failing_every=4)
    slo_burn_sweep(now=NOW)
    rule = _rule(org, enabled=False)

    assert slo_burn_sweep(now=NOW)["resolved"] == 1
    rule.delete()
    other = OrganizationFactory()
    _rule(other, enabled=False)
    checks(make_monitor(other, slo_target_pct=Decimal("99")), minutes=60, failing_every=4)
    assert slo_burn_sweep(now=NOW)["opened"] == 1  # only the first organization's, again


def test_the_budget_left_and_the_hours_to_exhaustion_come_from_the_window(org):
    monitor = make_monitor(org, slo_target_pct=Decimal("99"), slo_window_days=28)
    # Ten days ago, one day with 20 checks of which one failed: 5% of that day's checks.
    day = (NOW - timedelta(days=10)).replace(hour=0, minute=0)
    checks(monitor, minutes=20, failing_every=20, until=day + timedelta(hours=1))
    for hour in range(24):
        rollups.rollup_hour(day + timedelta(hours=hour))
    rollups.rollup_day(day)
    checks(monitor, minutes=60, failing_every=4)  # and the fast burn of the last hour
    for hour in range(NOW.hour + 1):
        rollups.rollup_hour(NOW.replace(hour=hour, minute=0))

    budget = slo.slo_budgets(monitors=[monitor], now=NOW)[monitor.pk]
    assert (budget.window_days, budget.decisive, budget.failed) == (28, 80, 16)
    assert budget.left_pct == -1900.0  # 20% of checks failed against a 1% budget: overspent
    assert budget.hours_to_exhaustion(25.0) == 0.0
    half = slo.Budget(target_pct=99, window_days=30, decisive=200, failed=1)
    assert half.left_pct == 50.0
    assert half.hours_to_exhaustion(2.0) == 180.0  # half of 720 h at twice the even pace
    assert half.hours_to_exhaustion(None) is None

    slo_burn_sweep(now=NOW)
    cause = Incident.objects.get(rule=RuleKind.SLO_BURN).cause
    assert (cause["budget_left_pct"], cause["hours_to_exhaustion"]) == (-1900.0, 0.0)


def test_one_sweep_reads_a_fixed_number_of_times_however_many_monitors_burn():
    def sweep_with(n: int) -> int:
        org = OrganizationFactory()  # each its own, so per-organization caches start cold
        for i in range(n):
            monitor = make_monitor(org, f"m{i}", slo_target_pct=Decimal("99"))
            checks(monitor, minutes=60, failing_every=4, step=5)
        with CaptureQueriesContext(connection) as seen:
            assert slo_burn_sweep(now=NOW)["opened"] == n
        Incident.objects.all().delete()
        CheckResult.objects.all().delete()
        return len(seen)

    assert sweep_with(1) == sweep_with(6)


def test_monitors_take_an_slo_through_the_api(client_for, member, org):
    monitor = make_monitor(org)
    client = client_for(member)
    url = f"/api/v1/monitors/{monitor.pk}/"
    done = client.patch(url, {"slo_target_pct": 99.5, "slo_window_days": 28}, format="json")
    assert done.status_code == 200, done.json()
    assert (done.json()["slo_target_pct"], done.json()["slo_window_days"]) == (99.5, 28)
    for bad in ({"slo_target_pct": 100}, {"slo_target_pct": 40}, {"slo_window_days": 7}):
        refused = client.patch(url, bad, format="json")
        assert refused.status_code == 400
        assert set(refused.json()["fields"]) == set(bad)
    rules = client.get("/api/v1/alert-rules/").json()
    listed = rules["results"] if isinstance(rules, dict) else rules
    assert {"kind": "slo_burn", "enabled": True} in [
        {"kind": r["kind"], "enabled": r["enabled"]} for r in listed
    ]


def test_an_slo_is_exported_and_applied_back_unchanged(org):
    import yaml

    from apps.monitors.config_as_code import document_apply, document_export

    make_monitor(org, "api", slo_target_pct=Decimal("99.95"), slo_window_days=28)
    exported = yaml.safe_load(yaml.safe_dump(document_export(org)))
    (entry,) = exported["monitors"]
    assert (entry["slo_target_pct"], entry["slo_window_days"]) == (99.95, 28)
    assert document_apply(org, exported).as_dict()["unchanged"] == ["api"]
    entry["slo_target_pct"] = 99.9
    assert document_apply(org, exported).as_dict()["updated"] == ["api"]
