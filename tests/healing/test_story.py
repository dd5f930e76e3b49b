"""The whole healing story against real peers: a flaky HTTP service on 127.0.0.1, checked by
the real engine, folded by the real state machine; the policy's signed webhook calls the
service's /restart; a real re-check verifies it; the incident resolves; every step is on the
timeline and in /api/v1/healing-attempts/."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.alerts.models import Notification
from apps.alerts.services import outbox
from apps.audit.models import AuditEntry
from apps.healing.models import AttemptStatus, Decision, HealingAttempt, Verification
from apps.incidents.models import EventKind, Incident, IncidentStatus
from apps.monitors import engine
from tests.alerts.conftest import make_webhook
from tests.alerts.support import serve_receiver
from tests.factories import make_monitor
from tests.healing.conftest import restart_policy
from tests.support import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker_for_alerts(monkeypatch):
    """Alert deliveries are not under test here: keep their nudges off the broker."""
    sent = []
    monkeypatch.setattr(outbox, "_send", lambda *a, **k: sent.append(a))
    return sent


def http_monitor(org, service, **extra):
    fields = {"timeout_seconds": 2, "failure_threshold": 2, "recovery_threshold": 1}
    config = {"url": service.url("/health")}
    return make_monitor(org, kind="http", config=config, tags=["payments"], **fields, **extra)


def check(monitor, capture):
    with capture(execute=True):
        engine.run_monitors([monitor.pk])
    monitor.refresh_from_db()


def test_the_policy_restarts_the_service_verifies_it_and_the_incident_resolves(
    pro, flaky, work, capture, client_for, owner
):
    monitor = http_monitor(pro, flaky)
    restart_policy(pro, flaky, monitor=monitor)
    flaky.healthy = False

    check(monitor, capture)  # one failure: below the threshold
    assert not Incident.objects.filter(monitor=monitor).exists()
    check(monitor, capture)  # second failure: down, the incident opens
    incident = Incident.objects.get(monitor=monitor)
    attempt = HealingAttempt.objects.get(incident=incident)
    assert attempt.decision == Decision.EXECUTE
    assert attempt.status == AttemptStatus.PENDING
    assert attempt.condition == "http_5xx"
    assert "HTTP 503" in attempt.explanation
    assert flaky.restarts == []  # nothing is called before the decision commits

    assert work.drain() == ["execute", "verify"]
    assert len(flaky.restarts) == 1
    assert flaky.bad_signatures == 0
    body = flaky.restarts[0]
    assert body["event"] == "healing"
    assert body["incident"]["id"] == str(incident.pk)
    assert body["monitor"]["name"] == "api"
    assert "config" not in body["monitor"]

    attempt.refresh_from_db()
    incident.refresh_from_db()
    assert attempt.status == AttemptStatus.SUCCEEDED
    assert attempt.verification == Verification.RECOVERED
    assert attempt.duration_ms is not None
    assert attempt.outcome["status_code"] == 200
    assert incident.status == IncidentStatus.RESOLVED
    monitor.refresh_from_db()
    assert monitor.status == "up"

    timeline = list(incident.events.order_by("at", "id").values_list("kind", "data"))
    kinds = [k for k, _ in timeline]
    steps = [d.get("step") for k, d in timeline if k == EventKind.HEALING]
    assert kinds[0] == EventKind.OPENED
    assert steps == ["decided", "succeeded", "verified"]
    assert EventKind.RESOLVED in kinds
    assert all(not d["notify"] for k, d in timeline if k == EventKind.HEALING)

    # The run is audited as the system's, and the API shows the attempt.
    run = AuditEntry.objects.get(action="healing.run")
    assert run.actor_kind == "system"
    assert run.object_id == str(attempt.pk)
    listed = client_for(owner).get("/api/v1/healing-attempts/", {"incident": incident.pk})
    assert listed.status_code == 200
    [row] = listed.json()["results"]
    assert row["status"] == "succeeded"
    assert row["verification"] == "recovered"
    detail = client_for(owner).get(f"/api/v1/incidents/{incident.pk}/")
    assert detail.status_code == 200
    assert [e["kind"] for e in detail.json()["timeline"]].count("healing") == 3


def test_cooldown_and_max_attempts_hold_under_repeated_failures(
    pro, flaky, work, capture, time_machine
):
    time_machine.move_to(timezone.now(), tick=True)
    monitor = http_monitor(pro, flaky)
    restart_policy(pro, flaky, monitor=monitor, escalate_on_failure=False)
    flaky.healthy = False
    flaky.restart_fixes = False
    check(monitor, capture)
    check(monitor, capture)
    incident = Incident.objects.get(monitor=monitor)
    for _ in range(6):
        work.drain()
        check(monitor, capture)  # failed again within the cooldown: no new attempt
        time_machine.shift(timedelta(minutes=6))
        check(monitor, capture)  # after the cooldown: the next attempt, until max_attempts
    work.drain()

    acted = HealingAttempt.objects.filter(incident=incident).exclude(
        status__in=[AttemptStatus.SKIPPED, AttemptStatus.SUGGESTED]
    )
    assert acted.count() == 3
    assert len(flaky.restarts) == 3
    assert set(acted.values_list("verification", flat=True)) == {Verification.NOT_RECOVERED}
    stopped = HealingAttempt.objects.filter(incident=incident, status=AttemptStatus.SKIPPED)
    assert stopped.count() == 1  # said once, not on every failed check
    assert "Max attempts reached: 3 of 3" in stopped.get().explanation
    starts = sorted(acted.values_list("created_at", flat=True))
    assert all(b - a >= timedelta(minutes=5) for a, b in itertools.pairwise(starts))


def test_the_cooldown_spans_incidents_on_the_same_monitor(pro, flaky, work, capture):
    monitor = http_monitor(pro, flaky)
    restart_policy(pro, flaky, monitor=monitor)
    flaky.healthy = False
    check(monitor, capture)
    check(monitor, capture)
    work.drain()  # restarted, verified, resolved
    first = Incident.objects.get(monitor=monitor)
    first.refresh_from_db()
    assert first.status == IncidentStatus.RESOLVED

    flaky.healthy = False  # broken again a moment later: a new incident
    check(monitor, capture)
    check(monitor, capture)
    second = Incident.objects.filter(monitor=monitor).exclude(pk=first.pk).get()
    decision = HealingAttempt.objects.get(incident=second)
    assert decision.status == AttemptStatus.SKIPPED
    assert "Cooldown" in decision.explanation
    work.drain()
    assert len(flaky.restarts) == 1


def test_an_unreachable_action_fails_the_attempt_and_escalates_at_once(pro, work, capture, flaky):
    with serve_receiver() as receiver:
        make_webhook(pro, receiver, name="first")
        make_webhook(pro, receiver, name="second")
        monitor = http_monitor(pro, flaky)
        restart_policy(pro, flaky, monitor=monitor)
        dead = free_port()  # nothing listens here
        policy = monitor.healing_policies.get()
        from apps.healing.services import policy_update

        policy_update(
            policy=policy,
            data={"action_config": {"url": f"http://127.0.0.1:{dead}/restart"}},
        )
        flaky.healthy = False
        check(monitor, capture)
        check(monitor, capture)
        incident = Incident.objects.get(monitor=monitor)
        # Error severity by default: the first channel at once, everyone else after 5 min.
        assert incident.next_escalation_at > timezone.now() + timedelta(minutes=4)
        before = Notification.objects.filter(incident=incident).count()
        work.drain()

    attempt = HealingAttempt.objects.get(incident=incident)
    assert attempt.status == AttemptStatus.FAILED
    assert "connection failed" in attempt.error
    assert attempt.escalated
    assert attempt.verification == Verification.NONE
    incident.refresh_from_db()
    escalated = incident.events.filter(kind=EventKind.ESCALATED)
    assert escalated.count() == 1  # the 5-minute step ran now
    assert Notification.objects.filter(incident=incident).count() > before
    steps = list(
        incident.events.filter(kind=EventKind.HEALING).values_list("data__step", flat=True)
    )
    assert steps == ["decided", "failed", "escalated"]
