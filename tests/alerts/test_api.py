"""The alerts API: channels (secrets write-only, test messages), escalation policies (a paid
feature), the delivery log. Every endpoint is tried by an outsider (404) and a viewer."""

from __future__ import annotations

import pytest

from apps.alerts.models import Channel, EscalationPolicy, NotificationStatus
from apps.alerts.services import channels as channel_services
from tests.alerts.conftest import make_email, make_webhook
from tests.alerts.support import WEBHOOK_SECRET, open_incident

pytestmark = pytest.mark.django_db
CHANNELS = "/api/v1/channels/"
POLICIES = "/api/v1/escalation-policies/"
NOTIFICATIONS = "/api/v1/notifications/"


def webhook_body(receiver, **overrides):
    return {
        "kind": "webhook",
        "name": "ops",
        "config": {"url": receiver.url("/hook")},
        **overrides,
    }


# --- channels -------------------------------------------------------------------------------


def test_a_member_creates_a_webhook_channel_and_sees_its_generated_secret_once(
    client_for, member, org, receiver
):
    client = client_for(member)
    created = client.post(CHANNELS, webhook_body(receiver), format="json")

    assert created.status_code == 201, created.json()
    body = created.json()
    secret = body["secrets"]["secret"]
    assert len(secret) >= 40
    assert body["secret_fields"] == ["secret"]
    assert body["severities"] == ["info", "warning", "error", "critical"]
    assert body["notify_on_resolved"] is True
    assert "secret" not in body["config"]
    again = client.get(f"{CHANNELS}{body['id']}/").json()
    assert secret not in str(again)
    assert "secrets" not in again
    listed = client.get(CHANNELS).json()
    assert secret not in str(listed)
    stored = Channel.objects.get(pk=body["id"])
    assert secret not in stored.secret  # encrypted at rest
    assert channel_services.channel_secrets(stored) == {"secret": secret}


def test_an_apprise_channel_needs_the_integrations_feature_and_hides_its_url(
    client_for, owner, org, pro
):
    body = {"kind": "apprise", "name": "slack", "config": {"url": "json://hooks.example.com/x"}}
    pro_response = client_for(owner).post(CHANNELS, body, format="json")
    assert pro_response.status_code == 201
    assert pro_response.json()["config"] == {}
    assert pro_response.json()["secret_fields"] == ["url"]


def test_apprise_on_the_free_plan_is_402(client_for, owner, org):
    body = {"kind": "apprise", "name": "slack", "config": {"url": "json://hooks.example.com/x"}}
    response = client_for(owner).post(CHANNELS, body, format="json")
    assert response.status_code == 402
    assert response.json() == {
        "error": "Upgrade Required",
        "feature": "integrations",
        "current_plan": "free",
    }
    assert not Channel.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "webhook", "name": "x", "config": {"url": "ftp://x"}}, "config"),
        ({"kind": "email", "name": "x", "config": {"to": ["not-an-address"]}}, "config"),
        ({"kind": "pigeon", "name": "x", "config": {}}, "kind"),
        (
            {"kind": "email", "name": "x", "config": {"to": ["a@b.co"]}, "severities": []},
            "severities",
        ),
        ({"kind": "email", "name": "x", "config": {"to": ["a@b.co"]}, "plan": "pro"}, "plan"),
        ({"kind": "email", "config": {"to": ["a@b.co"]}}, "name"),
    ],
    ids=["webhook-url", "email-to", "kind", "severities", "unknown-field", "missing-name"],
)
def test_bad_channel_input_is_a_400_naming_the_field(client_for, member, body, field):
    response = client_for(member).post(CHANNELS, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_patching_the_config_without_the_secret_keeps_the_stored_secret(
    client_for, member, org, receiver, nudges, capture
):
    channel = make_webhook(org, receiver)
    client = client_for(member)

    response = client.patch(
        f"{CHANNELS}{channel.pk}/",
        {"config": {"url": receiver.url("/new"), "headers": {"X-Team": "ops"}}},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["config"]["url"].endswith("/new")
    channel.refresh_from_db()
    assert channel_services.channel_secrets(channel) == {"secret": WEBHOOK_SECRET}
    open_incident(capture, org)
    nudges.drain()
    assert receiver.bad_signatures == 0
    assert receiver.requests[0].path == "/new"
    assert receiver.requests[0].headers["x-team"] == "ops"


def test_the_kind_of_a_channel_cannot_change(client_for, member, org):
    channel = make_email(org)
    response = client_for(member).patch(
        f"{CHANNELS}{channel.pk}/", {"kind": "webhook"}, format="json"
    )
    assert response.status_code == 400
    assert "kind" in response.json()["fields"]


def test_re_enabling_a_channel_clears_the_reason_it_was_disabled(client_for, member, org):
    channel = make_email(org)
    channel_services.channel_disable(channel_id=channel.pk, reason="webhook answered 410")

    body = client_for(member).get(f"{CHANNELS}{channel.pk}/").json()
    assert (body["enabled"], body["disabled_reason"]) == (False, "webhook answered 410")
    body = client_for(member).patch(f"{CHANNELS}{channel.pk}/", {"enabled": True}, format="json")
    assert (body.json()["enabled"], body.json()["disabled_reason"]) == (True, "")


def test_the_test_endpoint_sends_a_message_and_reports_the_outcome(
    client_for, member, org, receiver
):
    channel = make_webhook(org, receiver)

    response = client_for(member).post(f"/api/v1/channels/{channel.pk}/test")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["ok"], body["status"], body["error"]) == (True, "sent", "")
    assert body["details"]["status_code"] == 200
    [sent] = receiver.delivered
    assert sent["event"] == "test"
    assert receiver.bad_signatures == 0
    log = client_for(member).get(NOTIFICATIONS, {"kind": "test"}).json()["results"]
    assert [n["id"] for n in log] == [body["notification"]]


def test_a_failing_test_message_reports_why_and_leaves_the_channel_enabled(
    client_for, member, org, receiver
):
    channel = make_webhook(org, receiver)
    receiver.default = 404

    body = client_for(member).post(f"{CHANNELS}{channel.pk}/test/").json()

    assert (body["ok"], body["status"], body["permanent"]) == (False, "dead", True)
    assert "404" in body["error"]
    channel.refresh_from_db()
    assert channel.enabled
    assert len(receiver.requests) == 1  # tests are never retried


def test_a_viewer_reads_channels_but_cannot_change_or_test_them(client_for, viewer, org, receiver):
    channel = make_webhook(org, receiver)
    client = client_for(viewer)

    assert client.get(CHANNELS).status_code == 200
    assert client.get(f"{CHANNELS}{channel.pk}/").status_code == 200
    assert client.post(CHANNELS, webhook_body(receiver), format="json").status_code == 403
    assert client.patch(f"{CHANNELS}{channel.pk}/", {"name": "x"}, format="json").status_code == 403
    assert client.delete(f"{CHANNELS}{channel.pk}/").status_code == 403
    assert client.post(f"{CHANNELS}{channel.pk}/test/").status_code == 403
    assert receiver.requests == []


def test_a_read_key_cannot_create_a_channel(key_client, org, receiver):
    client = key_client(org, scopes=["read"])
    assert client.post(CHANNELS, webhook_body(receiver), format="json").status_code == 403


def test_a_member_deletes_a_channel(client_for, member, org):
    channel = make_email(org)
    assert client_for(member).delete(f"{CHANNELS}{channel.pk}/").status_code == 204
    assert not Channel.objects.exists()


def test_the_channel_list_does_not_grow_with_channels(
    client_for, member, org, django_assert_max_num_queries
):
    client = client_for(member)
    make_email(org)
    client.get(CHANNELS)
    for i in range(10):
        make_email(org, name=f"mail {i}")
    with django_assert_max_num_queries(4):
        assert len(client.get(CHANNELS).json()) == 11


# --- escalation policies --------------------------------------------------------------------


def policy_body(*channels, **overrides):
    return {
        "name": "night shift",
        "severities": ["critical"],
        "repeat": 2,
        "steps": [
            {"delay_minutes": 0, "channels": [str(channels[0].pk)]},
            {"delay_minutes": 5, "channels": [str(c.pk) for c in channels]},
        ],
        **overrides,
    }


def test_escalation_policies_need_the_feature(client_for, owner, org):
    channel = make_email(org)
    response = client_for(owner).post(POLICIES, policy_body(channel), format="json")
    assert response.status_code == 402
    assert response.json()["feature"] == "escalation_policies"
    assert client_for(owner).get(POLICIES).status_code == 200  # reading is never locked


def test_a_member_creates_and_replaces_a_policy_with_ordered_steps(client_for, member, pro):
    a, b = make_email(pro, name="a"), make_email(pro, name="b")
    client = client_for(member)

    created = client.post(POLICIES, policy_body(a, b), format="json")

    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["repeat"] == 2
    assert [(s["position"], s["delay_minutes"]) for s in body["steps"]] == [(0, 0), (1, 5)]
    assert body["steps"][1]["channels"] == [str(a.pk), str(b.pk)]
    patched = client.patch(
        f"{POLICIES}{body['id']}/",
        {"steps": [{"delay_minutes": 3, "channels": [str(b.pk)]}], "severities": ["error"]},
        format="json",
    )
    assert patched.status_code == 200, patched.json()
    assert patched.json()["steps"] == [{"position": 0, "delay_minutes": 3, "channels": [str(b.pk)]}]
    assert patched.json()["severities"] == ["error"]


def test_another_organizations_channel_in_a_step_is_a_400(client_for, member, pro, other_org):
    theirs = make_email(other_org)
    response = client_for(member).post(POLICIES, policy_body(theirs), format="json")
    assert response.status_code == 400
    assert "steps" in response.json()["fields"]
    assert not EscalationPolicy.objects.exists()


def test_two_policies_cannot_cover_the_same_severity(client_for, member, pro):
    channel = make_email(pro)
    client = client_for(member)
    assert client.post(POLICIES, policy_body(channel), format="json").status_code == 201
    response = client.post(
        POLICIES,
        policy_body(channel, name="other", severities=["critical", "error"]),
        format="json",
    )
    assert response.status_code == 400
    assert "critical" in str(response.json()["fields"]["severities"])


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"steps": []}, "steps"),
        ({"steps": [{"delay_minutes": -1, "channels": []}]}, "steps"),
        ({"severities": ["apocalyptic"]}, "severities"),
        ({"repeat": 11}, "repeat"),
        ({"owner": "me"}, "owner"),
    ],
)
def test_bad_policy_input_is_a_400_naming_the_field(client_for, member, pro, overrides, field):
    channel = make_email(pro)
    response = client_for(member).post(POLICIES, policy_body(channel, **overrides), format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_viewers_read_policies_but_cannot_change_them(client_for, viewer, member, pro):
    channel = make_email(pro)
    policy_id = client_for(member).post(POLICIES, policy_body(channel), format="json").json()["id"]
    url = f"{POLICIES}{policy_id}/"

    assert client_for(viewer).get(url).status_code == 200
    assert client_for(viewer).patch(url, {"repeat": 0}, format="json").status_code == 403
    assert client_for(viewer).delete(url).status_code == 403
    assert client_for(member).delete(url).status_code == 204


def test_the_policy_list_does_not_grow_with_policies(
    client_for, member, pro, django_assert_max_num_queries
):
    client = client_for(member)
    channels = [make_email(pro, name=f"c{i}") for i in range(3)]
    for i, severity in enumerate(["info", "warning", "error", "critical"]):
        client.post(
            POLICIES, policy_body(*channels, name=f"p{i}", severities=[severity]), format="json"
        )
    with django_assert_max_num_queries(6):
        assert len(client.get(POLICIES).json()) == 4


# --- the delivery log -----------------------------------------------------------------------


def test_the_delivery_log_shows_attempts_newest_first_with_a_cursor(
    client_for, viewer, org, receiver, nudges, capture, settings
):
    settings.ALERTS_GROUP_WINDOW_SECONDS = 0
    make_webhook(org, receiver)
    receiver.script = [500]
    first = open_incident(capture, org, title="one", rule="a")
    nudges.drain()
    for i in range(3):
        open_incident(capture, org, title=f"more {i}", rule=f"r{i}")
    nudges.drain()
    client = client_for(viewer)

    page = client.get(NOTIFICATIONS, {"page_size": 2}).json()

    assert [n["title"] for n in page["results"]] == ["more 2", "more 1"]
    assert page["next"]
    rest = client.get(page["next"]).json()
    assert [n["title"] for n in rest["results"]] == ["more 0", "one"]
    failed = client.get(NOTIFICATIONS, {"incident": str(first.pk)}).json()["results"]
    [row] = failed
    assert row["status"] == "failed"
    assert row["attempt_log"][0]["ok"] is False
    assert "500" in row["attempt_log"][0]["error"]
    assert len(client.get(NOTIFICATIONS, {"status": "sent"}).json()["results"]) == 3
    detail = client.get(f"{NOTIFICATIONS}{row['id']}/").json()
    assert detail["idempotency_key"] == row["idempotency_key"]


def test_bad_log_filters_are_a_400(client_for, member):
    response = client_for(member).get(NOTIFICATIONS, {"status": "lost", "since": "yesterday"})
    assert response.status_code == 400
    assert {"status", "since"} <= set(response.json()["fields"])


def test_the_delivery_log_is_read_only(client_for, member):
    assert client_for(member).post(NOTIFICATIONS, {}, format="json").status_code == 405


def test_the_delivery_log_does_not_grow_with_rows(
    client_for, member, org, receiver, nudges, capture, django_assert_max_num_queries, settings
):
    settings.ALERTS_GROUP_WINDOW_SECONDS = 0
    make_webhook(org, receiver)
    make_email(org)
    client = client_for(member)
    for i in range(8):
        open_incident(capture, org, severity="critical", rule=f"r{i}")
    client.get(NOTIFICATIONS)
    with django_assert_max_num_queries(5):
        body = client.get(NOTIFICATIONS).json()
    assert len(body["results"]) == 16
    assert all(n["status"] == NotificationStatus.PENDING for n in body["results"])


# --- the schema -----------------------------------------------------------------------------

ALERT_ENDPOINTS = {
    "/api/v1/channels/": {"get", "post"},
    "/api/v1/channels/{id}/": {"get", "patch", "delete"},
    "/api/v1/channels/{id}/test/": {"post"},
    "/api/v1/escalation-policies/": {"get", "post"},
    "/api/v1/escalation-policies/{id}/": {"get", "patch", "delete"},
    "/api/v1/notifications/": {"get"},
    "/api/v1/notifications/{id}/": {"get"},
}


def test_every_alerts_endpoint_is_in_the_schema_with_its_errors(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path, methods in ALERT_ENDPOINTS.items():
        assert set(schema["paths"][path]) >= methods, path
        for method in methods:
            codes = set(schema["paths"][path][method]["responses"])
            assert {"401", "403", "404"} <= codes, f"{method} {path}: {sorted(codes)}"
    assert "402" in schema["paths"]["/api/v1/escalation-policies/"]["post"]["responses"]


def test_a_downgrade_disables_channels_of_kinds_the_new_plan_lacks(client_for, owner, pro):
    from apps.plans.services import organization_change_plan

    slack, _ = channel_services.channel_create(
        org=pro, kind="apprise", name="slack", config={"url": "json://hooks.example.com/x"}
    )
    mail = make_email(pro)

    change = organization_change_plan(org=pro, plan_code="free", source="test")

    slack.refresh_from_db()
    mail.refresh_from_db()
    assert not slack.enabled
    assert "plan free" in slack.disabled_reason
    assert mail.enabled
    assert change.effects["alerts"] == {"disabled_channels": [str(slack.pk)]}
    again = client_for(owner).patch(f"{CHANNELS}{slack.pk}/", {"enabled": True}, format="json")
    assert again.status_code == 402
    slack.refresh_from_db()
    assert not slack.enabled
