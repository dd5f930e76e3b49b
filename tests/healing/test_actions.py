"""The action plugins against a real HTTP server on 127.0.0.1: what each sends, and how a
timeout, a refused connection, an unexpected status or a redirect fail the attempt. Both HTTP
actions share one call (actions/base.py `send`), so they fail in the same words."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest
from rest_framework import serializers

from apps.core.signing import verify_signature
from apps.healing.actions import REGISTRY, ActionError, ActionRequest, action_for
from apps.healing.actions.base import Action, register
from tests.monitors import targets
from tests.support import free_port

http_target = targets.http_target
SECRET = "restart-secret-0123456789abcdef"

REQUEST = ActionRequest(
    attempt_id="a1",
    organization="acme",
    reason="The check timed out: restart.",
    condition="timeout",
    incident={"id": "i1", "title": "api is down", "severity": "error"},
    monitor={"id": "m1", "name": "api", "slug": "api", "tags": ["prod"]},
)


def test_the_webhook_posts_the_incident_signed_like_alert_webhooks(http_target):
    url = http_target.route("/restart", status=202)

    outcome = action_for("webhook", {"url": url, "secret": SECRET}).run(REQUEST)

    assert outcome == {"status_code": 202}
    [seen] = http_target.requests
    assert (seen.method, seen.headers["x-healthorch-event"]) == ("POST", "healing")
    ts, signature = seen.headers["x-healthorch-timestamp"], seen.headers["x-healthorch-signature"]
    assert verify_signature(SECRET, ts, seen.body, signature)
    body = json.loads(seen.body)
    assert body["incident"]["title"] == "api is down"
    assert (body["event"], body["condition"], body["attempt_id"]) == ("healing", "timeout", "a1")


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ({"delay": 2}, "webhook timed out after 0.5s"),
        ({"status": 503}, "webhook answered 503"),
        ({"redirect_to": "/elsewhere"}, "webhook answered 302"),
    ],
)
def test_the_webhook_fails_on_timeouts_errors_and_redirects(http_target, route, message):
    url = http_target.route("/restart", **route)
    http_target.route("/elsewhere", status=200)
    action = action_for("webhook", {"url": url, "secret": SECRET, "timeout_seconds": 0.5})

    with pytest.raises(ActionError, match=message):
        action.run(REQUEST)
    assert http_target.hits["/elsewhere"] == 0  # a redirect is never followed


def test_a_refused_connection_fails_both_http_actions_in_the_same_words():
    url = f"http://127.0.0.1:{free_port()}/restart"
    with pytest.raises(ActionError, match="webhook connection failed: ConnectionError"):
        action_for("webhook", {"url": url, "secret": SECRET}).run(REQUEST)
    with pytest.raises(ActionError, match="request connection failed: ConnectionError"):
        action_for("http_request", {"url": url}).run(REQUEST)


def test_http_request_sends_the_configured_method_headers_and_json_body(http_target):
    url = http_target.route("/v1/rollout", status=202)
    config = {
        "method": "PUT",
        "url": url,
        "headers": {"Authorization": "Bearer t0ken"},
        "body": {"replicas": 3},
        "expected_status": [202],
    }

    assert action_for("http_request", config).run(REQUEST) == {"status_code": 202}

    [seen] = http_target.requests
    assert seen.method == "PUT"
    assert seen.headers["authorization"] == "Bearer t0ken"
    assert json.loads(seen.body) == {"replicas": 3}


def test_http_request_fails_on_a_status_it_was_not_told_to_expect(http_target):
    url = http_target.route("/v1/rollout", status=200)
    action = action_for("http_request", {"url": url, "expected_status": [202]})
    with pytest.raises(ActionError, match="request answered 200") as failed:
        action.run(REQUEST)
    assert failed.value.details == {"status_code": 200}


def test_noop_calls_nothing_and_says_it_only_records():
    action = action_for("noop", {})
    assert action.acts is False
    assert action.run(REQUEST) == {"dry_run": True}


def test_a_new_action_kind_is_one_small_subclass():
    class EchoConfig(serializers.Serializer):
        word = serializers.CharField()

    class Echo(Action):
        kind = "echo_for_test"
        config_serializer = EchoConfig
        secret_fields: ClassVar[tuple[str, ...]] = ()

        def run(self, request: ActionRequest) -> dict[str, Any]:
            return {"said": self.config["word"], "for": request.monitor["slug"]}

    register(Echo)
    try:
        assert action_for("echo_for_test", {"word": "hi"}).run(REQUEST) == {
            "said": "hi",
            "for": "api",
        }
        with pytest.raises(ActionError, match="invalid echo_for_test action config"):
            action_for("echo_for_test", {})
    finally:
        REGISTRY.pop("echo_for_test")
