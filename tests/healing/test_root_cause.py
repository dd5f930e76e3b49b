"""Root-cause analysis: deterministic evidence from real rows, and the optional language-model
summary against a local HTTP server speaking the Ollama /api/generate shape."""

from __future__ import annotations

import json

import pytest

from apps.alerts.services import outbox
from apps.incidents.models import Incident
from apps.incidents.services import dependency_create
from apps.monitors import services as monitor_services
from tests.factories import make_monitor
from tests.incidents.conftest import down, feed, up
from tests.monitors import targets

pytestmark = pytest.mark.django_db
http_target = targets.http_target


@pytest.fixture(autouse=True)
def _no_broker_for_alerts(monkeypatch):
    monkeypatch.setattr(outbox, "_send", lambda *a, **k: None)


def monitor(org, name, tags=(), **extra):
    return make_monitor(org, name, tags=list(tags), **extra)


def _scene(org):
    api = monitor(org, "api", tags=["db-eu", "web"], secret="s3cr3t-password-value")
    worker = monitor(org, "worker", tags=["db-eu"])
    feed(api, up(), up())
    # Someone changes the api monitor, then both monitors on the db-eu tag fail.
    monitor_services.monitor_update(monitor=api, data={"timeout_seconds": 1})
    feed(worker, down(), down())
    feed(api, down(), down())
    return Incident.objects.get(monitor=api)


def test_it_ranks_failing_together_shared_tags_error_spikes_and_config_changes(
    org, owner, client_for
):
    incident = _scene(org)
    response = client_for(owner).get(f"/api/v1/incidents/{incident.pk}/root-cause")
    assert response.status_code == 200
    body = response.json()
    kinds = [e["kind"] for e in body["evidence"]]
    assert {"failing_together", "shared_tag", "error_spike", "config_change"} <= set(kinds)
    scores = [e["score"] for e in body["evidence"]]
    assert scores == sorted(scores, reverse=True)
    shared = next(e for e in body["evidence"] if e["kind"] == "shared_tag")
    assert shared["details"]["tag"] == "db-eu"
    change = next(e for e in body["evidence"] if e["details"].get("action") == "monitor.updated")
    assert change["details"]["fields"] == ["timeout_seconds"]
    spike = next(e for e in body["evidence"] if e["kind"] == "error_spike")
    assert spike["details"]["error_class"] == "connection"
    assert body["summary_source"] == "deterministic"
    assert body["summary"].startswith("Most likely first:")
    # Deterministic: the same question, the same answer.
    again = client_for(owner).get(f"/api/v1/incidents/{incident.pk}/root-cause").json()
    assert again["evidence"] == body["evidence"]


def test_config_change_evidence_names_configuration_not_secrets_tokens_or_counters(
    org, owner, client_for
):
    from apps.audit import services as audit

    api = monitor(org, "api", kind="postgres", config={"dsn": "postgres://app@127.0.0.1/app"})
    feed(api, up())
    # A person changes the timeout and the password; the engine's counters move on their own.
    monitor_services.monitor_update(
        monitor=api, data={"timeout_seconds": 2, "secret": "new-password-value"}
    )
    audit.record(
        org=org,
        action="monitor.updated",
        target=api,
        before={"consecutive_failures": 0, "ping_token": "a", "status": "up"},
        after={"consecutive_failures": 3, "ping_token": "b", "status": "down"},
    )
    feed(api, down(), down())
    incident = Incident.objects.get(monitor=api)

    body = client_for(owner).get(f"/api/v1/incidents/{incident.pk}/root-cause").json()
    changes = [e for e in body["evidence"] if e["details"].get("action") == "monitor.updated"]
    assert [e["details"]["fields"] for e in changes] == [["timeout_seconds"]]
    assert "secret" not in changes[0]["title"]
    assert changes[0]["title"].endswith("(changed: timeout_seconds)")


def test_a_failing_dependency_is_evidence(org, owner, client_for):
    parent = monitor(org, "database")
    child = monitor(org, "api")
    dependency_create(org=org, monitor=child, depends_on=parent)
    feed(parent, down(), down())
    feed(child, down(), down())
    incident = Incident.objects.get(monitor=child)
    evidence = client_for(owner).get(f"/api/v1/incidents/{incident.pk}/root-cause").json()
    dep = [e for e in evidence["evidence"] if e["kind"] == "dependency"]
    assert dep
    assert dep[0]["details"]["name"] == "database"


def test_nothing_stands_out_says_so(org, owner, client_for):
    quiet = monitor(org, "quiet")
    feed(quiet, down(), down())
    incident = Incident.objects.get(monitor=quiet)
    body = client_for(owner).get(f"/api/v1/incidents/{incident.pk}/root-cause").json()
    kinds = {e["kind"] for e in body["evidence"]}
    assert kinds <= {"error_spike", "config_change"}


def test_the_language_model_summarises_the_evidence_without_secrets(
    org, owner, client_for, http_target, settings, key_client
):
    key = key_client(org)
    settings.ROOT_CAUSE_LLM_URL = http_target.url("")
    settings.ROOT_CAUSE_LLM_MODEL = "tiny"
    http_target.route(
        "/api/generate",
        body=json.dumps({"model": "tiny", "response": "The db-eu database failed.", "done": True}),
        headers={"Content-Type": "application/json"},
    )
    incident = _scene(org)
    body = client_for(owner).get(f"/api/v1/incidents/{incident.pk}/root-cause").json()
    assert body["summary_source"] == "llm"
    assert body["summary"] == "The db-eu database failed."
    assert body["llm_error"] == ""
    [request] = [r for r in http_target.requests if r.path == "/api/generate"]
    sent = json.loads(request.body)
    assert sent["model"] == "tiny"
    assert sent["stream"] is False
    assert "db-eu" in sent["prompt"]
    for secret in ("s3cr3t-password-value", key.secret, "127.0.0.1"):
        assert secret not in sent["prompt"]


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [({"delay": 3}, "timed out"), ({"status": 500}, "unavailable"), ({"body": "{}"}, "no text")],
)
def test_the_language_model_failing_falls_back_to_the_deterministic_summary(
    org, owner, client_for, http_target, settings, behaviour, error
):
    settings.ROOT_CAUSE_LLM_URL = http_target.url("")
    settings.ROOT_CAUSE_LLM_TIMEOUT_SECONDS = 1
    http_target.route("/api/generate", **behaviour)
    incident = _scene(org)
    body = client_for(owner).get(f"/api/v1/incidents/{incident.pk}/root-cause").json()
    assert body["summary_source"] == "deterministic"
    assert body["summary"].startswith("Most likely first:")
    assert error in body["llm_error"]
