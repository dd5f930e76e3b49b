"""The anomaly path with real rows (ml_healing): early action on a monitor that is still up,
acting where the rules would not, and the fallback to the rules on short data."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.alerts.services import outbox
from apps.healing import services as healing
from apps.healing.models import AttemptStatus, Decision, HealingAttempt
from apps.incidents.models import Incident
from apps.monitors import services as monitor_services
from apps.monitors.models import CheckResult
from tests.healing.conftest import restart_policy
from tests.incidents.conftest import down, feed, up

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker_for_alerts(monkeypatch):
    monkeypatch.setattr(outbox, "_send", lambda *a, **k: None)


def monitor(org, **extra):
    return monitor_services.monitor_create(
        org=org,
        data={
            "name": "api",
            "kind": "tcp",
            "config": {"host": "127.0.0.1", "port": 9},
            "failure_threshold": 2,
            "tags": ["web"],
            **extra,
        },
    )


def history(monitor, *, days=7, step_ms=0.0, step_minutes=25):
    """A week of 10-minute latency results with a daily rhythm, the last `step_minutes` of
    them `step_ms` slower."""
    now = timezone.now()
    rows = []
    for i in range(days * 144, 0, -1):
        at = now - timedelta(minutes=10 * i) + timedelta(seconds=30)
        ms = 120 + 30 * math.sin(at.hour / 24 * 2 * math.pi) + (i % 3)
        if at >= now - timedelta(minutes=step_minutes):
            ms += step_ms
        rows.append(
            CheckResult(
                monitor_id=monitor.pk,
                organization_id=monitor.organization_id,
                checked_at=at,
                outcome="up",
                response_time_ms=ms,
            )
        )
    CheckResult.objects.bulk_create(rows)


def test_an_anomaly_lets_the_policy_act_before_any_incident(business, flaky, work, capture):
    m = monitor(business)
    restart_policy(business, flaky, tag="web", use_anomaly=True, rules=["latency_step"])
    feed(m, up())
    history(m, step_ms=200)

    with capture(execute=True):
        assert healing.anomaly_scan() == 1
    attempt = HealingAttempt.objects.get(monitor=m)
    assert attempt.incident is None
    assert attempt.path == "anomaly"
    assert attempt.condition == "latency_step"
    assert attempt.decision == Decision.EXECUTE
    assert attempt.explanation.startswith("Before any incident: Anomaly: latency stepped up")
    assert not Incident.objects.filter(monitor=m).exists()
    work.drain(limit=1)
    assert len(flaky.restarts) == 1
    assert flaky.restarts[0]["condition"] == "latency_step"
    assert healing.anomaly_scan() == 0  # not again within the cooldown


def test_a_normal_week_triggers_nothing(business, flaky):
    m = monitor(business)
    restart_policy(business, flaky, monitor=m, use_anomaly=True)
    feed(m, up())
    history(m)
    assert healing.anomaly_scan() == 0
    assert not HealingAttempt.objects.exists()


def test_without_ml_healing_the_scan_ignores_the_policy(business, flaky, org):
    m = monitor(business)
    restart_policy(business, flaky, monitor=m, use_anomaly=True)
    feed(m, up())
    history(m, step_ms=200)
    from apps.plans.services import organization_change_plan

    organization_change_plan(org=business, plan_code="pro", source="test")
    assert healing.anomaly_scan() == 0


def test_the_anomaly_acts_where_the_rules_would_not(business, flaky, work, capture):
    m = monitor(business)
    restart_policy(business, flaky, monitor=m, use_anomaly=True, rules=["http_5xx", "latency_step"])
    history(m, step_ms=200)
    refused = down()
    refused = type(refused)("down", status_code=429, error_class="status")  # rules: no restart
    feed(m, refused, refused)
    attempt = HealingAttempt.objects.get(incident__monitor=m)
    assert attempt.path == "anomaly"
    assert attempt.status == AttemptStatus.PENDING
    assert attempt.inputs["anomaly"]["kind"] == "latency_step"


def test_short_data_falls_back_to_the_rules_and_says_so(business, flaky):
    m = monitor(business)
    restart_policy(business, flaky, monitor=m, use_anomaly=True)
    feed(m, up(), down(), down())
    attempt = HealingAttempt.objects.get(incident__monitor=m)
    assert attempt.path == "rules"
    assert attempt.decision == Decision.EXECUTE
    assert "Anomaly model not used: only" in attempt.explanation
    assert "the rules decide" in attempt.explanation
