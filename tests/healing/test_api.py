"""Healing API: policies (plan gates, write-only secrets, validation), attempts, the one-click
heal, outsiders 404, viewers read-only, query budgets."""

from __future__ import annotations

import pytest

from apps.healing.models import AttemptStatus, HealingAttempt, HealingPolicy
from apps.incidents.models import Incident
from tests.factories import make_monitor
from tests.healing.conftest import restart_policy
from tests.healing.support import RESTART_SECRET
from tests.incidents.conftest import down, feed

pytestmark = pytest.mark.django_db


def tcp_monitor(org, name="api", **extra):
    return make_monitor(org, name, failure_threshold=2, **extra)


def policy_body(monitor, service, **extra):
    return {
        "name": "restart",
        "monitor": str(monitor.pk),
        "action_kind": "webhook",
        "action_config": {"url": service.url("/restart"), "secret": RESTART_SECRET},
        **extra,
    }


def test_creating_a_policy_shows_its_secret_once(org, owner, client_for, flaky):
    monitor = tcp_monitor(org)
    client = client_for(owner)
    created = client.post("/api/v1/healing-policies/", policy_body(monitor, flaky), format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["secrets"] == {"secret": RESTART_SECRET}
    assert "secret" not in body["action_config"]
    assert body["max_attempts"] == 3
    assert body["cooldown_minutes"] == 5
    assert body["escalate_on_failure"] is True
    shown = client.get(f"/api/v1/healing-policies/{body['id']}/").json()
    assert "secrets" not in shown
    assert RESTART_SECRET not in str(shown)


def test_automatic_execution_needs_auto_orchestration(org, owner, client_for, flaky):
    monitor = tcp_monitor(org)
    client = client_for(owner)
    refused = client.post(
        "/api/v1/healing-policies/", policy_body(monitor, flaky, auto=True), format="json"
    )
    assert refused.status_code == 402
    assert refused.json() == {
        "error": "Upgrade Required",
        "feature": "auto_orchestration",
        "current_plan": "free",
    }
    ok = client.post("/api/v1/healing-policies/", policy_body(monitor, flaky), format="json")
    assert ok.status_code == 201
    enabling = client.patch(
        f"/api/v1/healing-policies/{ok.json()['id']}/", {"auto": True}, format="json"
    )
    assert enabling.status_code == 402
    assert HealingPolicy.objects.get().auto is False


def test_the_anomaly_path_needs_ml_healing(pro, owner, client_for, flaky):
    monitor = tcp_monitor(pro)
    refused = client_for(owner).post(
        "/api/v1/healing-policies/",
        policy_body(monitor, flaky, auto=True, use_anomaly=True),
        format="json",
    )
    assert refused.status_code == 402
    assert refused.json()["feature"] == "ml_healing"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"action_kind": "teleport"}, "action_kind"),
        ({"action_config": {"url": "ftp://x"}}, "action_config"),
        ({"rules": ["everything"]}, "rules"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"tag": "db"}, "monitor"),  # both a monitor and a tag
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_policies_are_400s_naming_the_field(org, owner, client_for, flaky, change, field):
    monitor = tcp_monitor(org)
    response = client_for(owner).post(
        "/api/v1/healing-policies/", {**policy_body(monitor, flaky), **change}, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_another_tenants_monitor_cannot_be_targeted(org, other_org, owner, client_for, flaky):
    theirs = tcp_monitor(other_org)
    response = client_for(owner).post(
        "/api/v1/healing-policies/", policy_body(theirs, flaky), format="json"
    )
    assert response.status_code == 400
    assert "monitor" in response.json()["fields"]


def _suggested_incident(org, flaky):
    monitor = tcp_monitor(org)
    restart_policy(org, flaky, monitor=monitor, auto=False)
    feed(monitor, down(), down())
    incident = Incident.objects.get(monitor=monitor)
    assert HealingAttempt.objects.get(incident=incident).status == AttemptStatus.SUGGESTED
    return incident


def test_a_member_runs_the_suggestion_with_one_call(org, member, client_for, flaky, work, capture):
    incident = _suggested_incident(org, flaky)
    with capture(execute=True):
        response = client_for(member).post(f"/api/v1/incidents/{incident.pk}/heal")
    assert response.status_code == 202, response.json()
    assert response.json()["status"] == "pending"
    assert response.json()["requested_by"] == member.pk
    work.drain()
    assert len(flaky.restarts) == 1
    attempt = HealingAttempt.objects.get(incident=incident)
    assert attempt.status == AttemptStatus.SUCCEEDED
    again = client_for(member).post(f"/api/v1/incidents/{incident.pk}/heal")
    assert again.status_code == 409  # within the cooldown
    assert again.json()["code"] == "cooldown"


def test_healing_an_incident_without_a_policy_is_a_400(org, member, client_for):
    monitor = tcp_monitor(org)
    feed(monitor, down(), down())
    incident = Incident.objects.get(monitor=monitor)
    response = client_for(member).post(f"/api/v1/incidents/{incident.pk}/heal")
    assert response.status_code == 400
    assert response.json()["code"] == "no_policy"


def test_viewers_read_but_cannot_heal_or_change_policies(org, viewer, client_for, flaky):
    incident = _suggested_incident(org, flaky)
    client = client_for(viewer)
    assert client.get("/api/v1/healing-attempts/").status_code == 200
    assert client.get("/api/v1/healing-policies/").status_code == 200
    assert client.get(f"/api/v1/incidents/{incident.pk}/root-cause").status_code == 200
    assert client.post(f"/api/v1/incidents/{incident.pk}/heal").status_code == 403
    policy = HealingPolicy.objects.get()
    assert (
        client.patch(f"/api/v1/healing-policies/{policy.pk}/", {"enabled": False}).status_code
        == 403
    )
    assert client.delete(f"/api/v1/healing-policies/{policy.pk}/").status_code == 403


def test_attempt_list_filters_and_stays_within_its_query_budget(
    org, owner, client_for, flaky, django_assert_max_num_queries
):
    for i in range(5):
        monitor = tcp_monitor(org, name=f"svc{i}")
        restart_policy(org, flaky, monitor=monitor, auto=False, name=f"p{i}")
        feed(monitor, down(), down())
    client = client_for(owner)
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/healing-attempts/")
    assert response.status_code == 200
    assert len(response.json()["results"]) == 5
    one = Incident.objects.first()
    only = client.get("/api/v1/healing-attempts/", {"incident": str(one.pk)}).json()["results"]
    assert [r["incident"] for r in only] == [str(one.pk)]
    assert client.get("/api/v1/healing-attempts/", {"status": "bogus"}).status_code == 400
    with django_assert_max_num_queries(8):
        assert client.get("/api/v1/healing-policies/").status_code == 200
