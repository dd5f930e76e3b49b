"""The decision engine and the anomaly model, as pure functions on synthetic inputs."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from apps.healing import anomaly
from apps.healing.engine import Facts, History, PolicyView, decide
from apps.healing.models import Decision

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = PolicyView(
    name="restart",
    action_kind="webhook",
    rules=["timeout", "http_5xx", "connection", "latency_step", "latency_drift"],
    severities=["warning", "error", "critical"],
    auto=True,
)


NO_HISTORY = History()


def verdict(facts, *, policy=POLICY, history=NO_HISTORY, auto=True, **kw):
    return decide(
        facts=facts,
        policy=policy,
        history=history,
        now=NOW,
        auto_allowed=auto,
        anomaly_allowed=kw.pop("anomaly_allowed", True),
        **kw,
    )


@pytest.mark.parametrize(
    ("facts", "decision", "condition", "words"),
    [
        (Facts("service_down", "error", "status", 503), Decision.EXECUTE, "http_5xx", "HTTP 503"),
        (Facts("service_down", "error", "timeout"), Decision.EXECUTE, "timeout", "timed out"),
        (Facts("service_down", "error", "connection"), Decision.EXECUTE, "connection", "refused"),
        (
            Facts("high_response_time", "warning", "slow"),
            Decision.SUGGEST,
            "high_response_time",
            "scale_up",
        ),
        (
            Facts("certificate_expiry", "warning", "cert_expiring"),
            Decision.NOTIFY_ONLY,
            "certificate",
            "never act",
        ),
        (Facts("service_down", "error", "tls"), Decision.NOTIFY_ONLY, "certificate", "never act"),
        (Facts("service_down", "error", "dns"), Decision.SKIP, "", "No rule matches"),
        (Facts("service_down", "error", "status", 404), Decision.SKIP, "", "HTTP 404"),
    ],
)
def test_the_rule_table_decides_first_match_and_says_why(facts, decision, condition, words):
    v = verdict(facts)
    assert v.decision == decision
    assert v.condition == condition
    assert words in v.explanation
    assert v.path == "rules"


def test_a_certificate_rule_wins_over_a_later_matching_rule():
    # TLS failure with a 5xx-looking status: the certificate rule is first, so never act.
    v = verdict(Facts("service_down", "error", "tls", 502))
    assert v.decision == Decision.NOTIFY_ONLY


def test_guards_in_order_severity_in_flight_max_attempts_cooldown():
    down = Facts("service_down", "info", "timeout")
    assert "does not act on info" in verdict(down).explanation
    down = Facts("service_down", "error", "timeout")
    assert verdict(down, history=History(in_flight=True)).guard == "in_flight"
    maxed = verdict(down, history=History(acted_on_incident=3))
    assert maxed.guard == "max_attempts"
    assert "3 of 3" in maxed.explanation
    recent = verdict(down, history=History(last_acted_on_monitor=NOW - timedelta(minutes=4)))
    assert recent.guard == "cooldown"
    assert recent.decision == Decision.SKIP
    old = verdict(down, history=History(last_acted_on_monitor=NOW - timedelta(minutes=5)))
    assert old.decision == Decision.EXECUTE


def test_without_auto_orchestration_an_auto_policy_only_suggests():
    v = verdict(Facts("service_down", "error", "timeout"), auto=False)
    assert v.decision == Decision.SUGGEST
    assert "auto_orchestration" in v.explanation


def test_the_same_input_gives_the_same_verdict():
    facts = Facts("service_down", "error", "status", 500)
    assert verdict(facts) == verdict(facts)


# --- the anomaly model ------------------------------------------------------------------------


def series(days: float, value, *, every_minutes: int = 10, seed: int = 7):
    rng = random.Random(seed)
    start = NOW - timedelta(days=days)
    points = []
    n = int(days * 24 * 60 / every_minutes)
    for i in range(n + 1):
        t = start + timedelta(minutes=i * every_minutes)
        points.append((t, value(t, i / n) + rng.gauss(0, 4)))
    return points


def daily(t: datetime) -> float:
    # Busy afternoons: 100 ms at night, 180 ms at 15:00.
    return 140 + 40 * math.sin((t.hour + t.minute / 60 - 9) / 24 * 2 * math.pi)


def test_a_seasonal_pattern_is_not_flagged():
    v = anomaly.detect(series(8, lambda t, f: daily(t)), now=NOW)
    assert v.usable
    assert v.seasonality == "hour_of_day"
    assert not v.anomalous, v.reason


def test_a_step_change_is_detected():
    def stepped(t, f):
        return daily(t) + (120 if t >= NOW - timedelta(minutes=25) else 0)

    v = anomaly.detect(series(8, stepped), now=NOW)
    assert v.anomalous
    assert v.kind == "latency_step"
    assert "stepped up" in v.reason


def test_a_slow_drift_is_detected():
    # Creeping up to +30% over the last six hours: no single point is out of line, and the
    # newest ones are not far enough above the baseline to count as a step.
    def drifting(t, f):
        hours_left = (NOW - t).total_seconds() / 3600
        return daily(t) * (1 + max(0.0, (6 - hours_left) / 6) * 0.3)

    v = anomaly.detect(series(8, drifting), now=NOW)
    assert v.anomalous
    assert v.kind == "latency_drift", v.reason
    assert "drifted up" in v.reason


def test_weekly_seasonality_is_used_with_two_weeks_of_history():
    def weekly(t, f):
        return daily(t) + (60 if t.weekday() == NOW.weekday() else 0)  # busy every Tuesday

    v = anomaly.detect(series(15, weekly), now=NOW)
    assert v.seasonality == "hour_of_week"
    assert not v.anomalous, v.reason


def test_short_data_is_not_an_anomaly_and_says_why():
    v = anomaly.detect(series(0.3, lambda t, f: 100), now=NOW)
    assert not v.usable
    assert "history" in v.reason


def test_the_engine_falls_back_to_the_rules_when_the_model_cannot_be_used():
    policy = PolicyView(**{**POLICY.__dict__, "use_anomaly": True})
    short = anomaly.detect(series(0.3, lambda t, f: 100), now=NOW)
    v = verdict(Facts("service_down", "error", "timeout"), policy=policy, anomaly=short)
    assert v.path == "rules"
    assert v.decision == Decision.EXECUTE
    assert "Anomaly model not used" in v.explanation
    failed = verdict(
        Facts("service_down", "error", "timeout"), policy=policy, anomaly_error="ValueError"
    )
    assert "Anomaly model failed (ValueError); the rules decide." in failed.explanation
    locked = verdict(
        Facts("service_down", "error", "timeout"), policy=policy, anomaly_allowed=False
    )
    assert "lacks ml_healing" in locked.explanation


def test_an_anomaly_acts_where_no_hard_rule_does():
    policy = PolicyView(**{**POLICY.__dict__, "use_anomaly": True})

    def stepped(t, f):
        return daily(t) + (120 if t >= NOW - timedelta(minutes=25) else 0)

    found = anomaly.detect(series(8, stepped), now=NOW)
    # A 4xx would not be restarted by the rules; the latency step makes it a candidate.
    v = verdict(Facts("service_down", "error", "status", 429), policy=policy, anomaly=found)
    assert v.path == "anomaly"
    assert v.condition == "latency_step"
    assert v.decision == Decision.EXECUTE
    assert v.inputs["anomaly"]["anomalous"] is True
