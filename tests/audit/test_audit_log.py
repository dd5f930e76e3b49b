"""The audit log: one row per audited change, written in the change's transaction, with who,
what, before/after and the request id; readable on plans with audit_logs; never changeable."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from apps.alerts.services import outbox
from apps.audit import services as audit
from apps.audit.models import AuditEntry, ImmutableAuditEntry
from apps.incidents.models import Incident
from apps.monitors import services as monitor_services
from apps.plans.services import organization_change_plan
from tests.factories import UserFactory
from tests.incidents.conftest import down, feed

pytestmark = pytest.mark.django_db

MONITOR = {
    "name": "api",
    "kind": "tcp",
    "config": {"host": "127.0.0.1", "port": 9},
    "failure_threshold": 2,
}


@pytest.fixture(autouse=True)
def _no_broker_for_alerts(monkeypatch):
    monkeypatch.setattr(outbox, "_send", lambda *a, **k: None)


def entries(action):
    return list(AuditEntry.objects.filter(action=action))


def test_monitor_changes_record_who_what_before_after_and_request_id(business, owner, client_for):
    client = client_for(owner)
    created = client.post("/api/v1/monitors/", MONITOR, format="json", HTTP_X_REQUEST_ID="req-1")
    assert created.status_code == 201, created.json()
    monitor_id = created.json()["id"]
    [entry] = entries("monitor.created")
    assert entry.actor_kind == "user"
    assert entry.actor_user_id == owner.pk
    assert entry.actor_label == owner.email
    assert entry.request_id == "req-1"
    assert entry.object_id == monitor_id
    assert entry.changes["name"] == {"before": None, "after": "api"}

    client.patch(
        f"/api/v1/monitors/{monitor_id}/",
        {"interval_seconds": 600, "name": "api-v2"},
        format="json",
        HTTP_X_REQUEST_ID="req-2",
    )
    [update] = entries("monitor.updated")
    assert update.changes == {
        "interval_seconds": {"before": 300, "after": 600},
        "name": {"before": "api", "after": "api-v2"},
    }
    assert update.request_id == "req-2"

    client.delete(f"/api/v1/monitors/{monitor_id}/")
    [deleted] = entries("monitor.deleted")
    assert deleted.changes["name"] == {"before": "api-v2", "after": None}


def test_api_keys_act_as_themselves(business, key_client):
    client = key_client(business)
    client.post("/api/v1/monitors/", MONITOR, format="json")
    [entry] = entries("monitor.created")
    assert entry.actor_kind == "api_key"
    assert entry.actor_api_key_id == client.api_key.pk
    assert entry.actor_label == f'API key "test" ({client.api_key.prefix})'


def test_channels_members_keys_plans_policies_acks_and_healing_runs_are_recorded(
    business, owner, client_for
):
    client = client_for(owner)
    channel = client.post(
        "/api/v1/channels/",
        {"kind": "webhook", "name": "hook", "config": {"url": "http://127.0.0.1:9/h"}},
        format="json",
    )
    assert channel.status_code == 201, channel.json()
    client.patch(f"/api/v1/channels/{channel.json()['id']}/", {"name": "hook2"}, format="json")
    [created] = entries("channel.created")
    assert "secret" not in str(created.changes.get("config"))
    assert created.changes["secret"]["after"] == "[redacted]"
    assert entries("channel.updated")[0].changes == {"name": {"before": "hook", "after": "hook2"}}

    newcomer = UserFactory(email="new@example.test")
    added = client.post(
        "/api/v1/members/", {"email": newcomer.email, "role": "member"}, format="json"
    )
    assert added.status_code == 201, added.json()
    client.patch(f"/api/v1/members/{added.json()['id']}/", {"role": "viewer"}, format="json")
    client.delete(f"/api/v1/members/{added.json()['id']}/")
    assert entries("member.added")[0].object_repr == newcomer.email
    assert entries("member.role_changed")[0].changes == {
        "role": {"before": "member", "after": "viewer"}
    }
    assert entries("member.removed")[0].changes == {"role": {"before": "viewer", "after": None}}

    key = client.post("/api/v1/api-keys/", {"name": "ci", "scopes": ["read"]}, format="json")
    client.delete(f"/api/v1/api-keys/{key.json()['id']}/")
    [key_created] = entries("apikey.created")
    assert key.json()["key"] not in str(key_created.changes)
    assert key_created.changes["key_hash"]["after"] == "[redacted]"
    assert len(entries("apikey.revoked")) == 1

    organization_change_plan(org=business, plan_code="enterprise", source="billing")
    plan = [e for e in entries("plan.changed") if e.changes["plan"]["after"] == "enterprise"]
    assert plan[0].changes == {"plan": {"before": "business", "after": "enterprise"}}
    assert plan[0].actor_kind == "system"  # outside a request: the billing webhook, a task
    assert plan[0].data["source"] == "billing"

    monitor = monitor_services.monitor_create(org=business, data=dict(MONITOR))
    policy = client.post(
        "/api/v1/healing-policies/",
        {"name": "dry run", "monitor": str(monitor.pk), "action_kind": "noop"},
        format="json",
    )
    assert policy.status_code == 201, policy.json()
    assert len(entries("healingpolicy.created")) == 1

    feed(monitor, down(), down())
    incident = Incident.objects.get(monitor=monitor)
    assert client.post(f"/api/v1/incidents/{incident.pk}/acknowledge/").status_code == 200
    [ack] = entries("incident.acknowledged")
    assert ack.actor_user_id == owner.pk
    assert ack.changes == {"status": {"before": "triggered", "after": "acknowledged"}}

    assert client.post(f"/api/v1/incidents/{incident.pk}/heal").status_code == 202
    [run] = entries("healing.run")
    assert run.actor_user_id == owner.pk
    assert run.data["action"] == "noop"


def test_a_rolled_back_change_leaves_no_entry(business):
    def create_then_fail():
        with transaction.atomic():
            monitor_services.monitor_create(org=business, data=dict(MONITOR))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        create_then_fail()
    assert not AuditEntry.objects.filter(object_type="monitor").exists()


def test_entries_cannot_be_changed_or_deleted(business, owner, client_for):
    monitor_services.monitor_create(org=business, data=dict(MONITOR))
    entry = AuditEntry.objects.get(action="monitor.created")
    entry.action = "monitor.forged"
    with pytest.raises(ImmutableAuditEntry):
        entry.save()
    with pytest.raises(ImmutableAuditEntry):
        entry.delete()
    with pytest.raises(ImmutableAuditEntry):
        AuditEntry.objects.filter(pk=entry.pk).update(action="monitor.forged")
    with pytest.raises(ImmutableAuditEntry):
        AuditEntry.objects.all().delete()
    client = client_for(owner)
    url = f"/api/v1/audit-log/{entry.pk}/"
    assert client.get(url).status_code == 200
    assert client.put(url, {}, format="json").status_code == 405
    assert client.patch(url, {}, format="json").status_code == 405
    assert client.delete(url).status_code == 405
    assert client.post("/api/v1/audit-log/", {}, format="json").status_code == 405
    assert AuditEntry.objects.get(pk=entry.pk).action == "monitor.created"


def test_reading_needs_audit_logs_but_recording_happens_on_every_plan(org, owner, client_for):
    monitor_services.monitor_create(org=org, data=dict(MONITOR))  # free plan
    assert AuditEntry.objects.filter(organization=org).count() == 1
    response = client_for(owner).get("/api/v1/audit-log/")
    assert response.status_code == 402
    assert response.json()["feature"] == "audit_logs"


def test_filters_by_actor_object_type_and_time(
    business, owner, key_client, client_for, django_assert_max_num_queries
):
    client = client_for(owner)
    client.post("/api/v1/monitors/", MONITOR, format="json")
    keyed = key_client(business)
    keyed.post("/api/v1/monitors/", {**MONITOR, "name": "b"}, format="json")
    client.post(
        "/api/v1/channels/",
        {"kind": "webhook", "name": "hook", "config": {"url": "http://127.0.0.1:9/h"}},
        format="json",
    )
    with django_assert_max_num_queries(8):
        everything = client.get("/api/v1/audit-log/").json()["results"]
    assert len(everything) >= 4  # plan change (fixture), two monitors, one channel
    by_user = client.get("/api/v1/audit-log/", {"actor": owner.email}).json()["results"]
    assert {e["action"] for e in by_user} == {"monitor.created", "channel.created"}
    by_key = client.get("/api/v1/audit-log/", {"actor": "api_key"}).json()["results"]
    assert [e["object_repr"] for e in by_key] == ["b"]
    # One key, by its prefix or its whole label.
    prefix = keyed.api_key.prefix
    for actor in (prefix, f'API key "test" ({prefix})'):
        one_key = client.get("/api/v1/audit-log/", {"actor": actor}).json()["results"]
        assert [e["object_repr"] for e in one_key] == ["b"], actor
    assert client.get("/api/v1/audit-log/", {"actor": "hk_nosuchkey"}).json()["results"] == []
    channels = client.get("/api/v1/audit-log/", {"object_type": "channel"}).json()["results"]
    assert [e["action"] for e in channels] == ["channel.created"]
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    assert client.get("/api/v1/audit-log/", {"since": future}).json()["results"] == []
    assert client.get("/api/v1/audit-log/", {"since": "yesterday"}).status_code == 400


def test_viewers_read_and_outsiders_get_404(business, viewer, outsider, client_for):
    monitor_services.monitor_create(org=business, data=dict(MONITOR))
    entry = AuditEntry.objects.filter(action="monitor.created").get()
    assert client_for(viewer).get(f"/api/v1/audit-log/{entry.pk}/").status_code == 200
    organization_change_plan(
        org=outsider.memberships.first().organization, plan_code="business", source="test"
    )
    outsiders = client_for(outsider)
    assert outsiders.get(f"/api/v1/audit-log/{entry.pk}/").status_code == 404
    assert all(
        e["object_id"] != entry.object_id
        for e in outsiders.get("/api/v1/audit-log/").json()["results"]
    )


def test_the_admin_is_read_only_for_operators_and_hidden_from_tenants(business, owner, client):
    from django.contrib.auth import get_user_model

    monitor_services.monitor_create(org=business, data=dict(MONITOR))
    entry = AuditEntry.objects.get(action="monitor.created")
    operator = get_user_model().objects.create_superuser("op@example.test", "op@example.test", "x")
    client.force_login(operator)
    url = f"/admin/audit/auditentry/{entry.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert b"monitor.created" in page.content
    assert b'name="_save"' not in page.content
    assert client.post(url, {"action": "forged"}).status_code == 403
    assert client.get(f"/admin/audit/auditentry/{entry.pk}/delete/").status_code == 403
    owner.is_staff = True
    owner.save()
    client.force_login(owner)
    assert client.get("/admin/audit/auditentry/").status_code == 403


def test_snapshots_redact_secrets_but_show_that_they_changed(business):
    monitor = monitor_services.monitor_create(
        org=business, data={**MONITOR, "name": "pg", "secret": "hunter2"}
    )
    before = audit.snapshot(monitor)
    monitor_services.monitor_update(monitor=monitor, data={"secret": "correct-horse"})
    [update] = entries("monitor.updated")
    assert update.changes == {"secret": {"before": "[redacted]", "after": "[redacted]"}}
    assert "hunter2" not in str(before)


def test_deleting_the_actor_or_the_organization_keeps_or_erases_entries_cleanly(
    business, key_client, other_org
):
    from apps.tenants.services import api_key_revoke, api_keys_purge_dead

    client = key_client(business)
    client.post("/api/v1/monitors/", MONITOR, format="json")
    api_key_revoke(api_key=client.api_key)
    # A purged key (and a deleted user) leave the entries as they were, still naming them.
    client.api_key.revoked_at = timezone.now() - timedelta(days=40)
    from apps.tenants.models import ApiKey

    ApiKey.objects.filter(pk=client.api_key.pk).update(revoked_at=client.api_key.revoked_at)
    assert api_keys_purge_dead() == 1
    entry = AuditEntry.objects.get(action="monitor.created")
    assert entry.actor_api_key_id == client.api_key.pk
    assert entry.actor_label == f'API key "test" ({client.api_key.prefix})'
    # Erasing a tenant erases its log with it (and nobody else's).
    monitor_services.monitor_create(org=other_org, data=dict(MONITOR))
    business.delete()
    assert not AuditEntry.objects.filter(organization_id=business.pk).exists()
    assert AuditEntry.objects.filter(organization=other_org).count() == 1


def test_policy_updates_and_deletions_through_the_api_are_recorded(business, owner, client_for):
    client = client_for(owner)
    channel = client.post(
        "/api/v1/channels/",
        {"kind": "webhook", "name": "hook", "config": {"url": "http://127.0.0.1:9/h"}},
        format="json",
    ).json()
    made = client.post(
        "/api/v1/escalation-policies/",
        {
            "name": "on call",
            "severities": ["critical"],
            "steps": [{"delay_minutes": 0, "channels": [channel["id"]]}],
        },
        format="json",
    )
    assert made.status_code == 201, made.json()
    url = f"/api/v1/escalation-policies/{made.json()['id']}/"
    assert client.patch(url, {"repeat": 2}, format="json").status_code == 200
    assert client.delete(url).status_code == 204
    assert entries("escalationpolicy.updated")[0].changes == {"repeat": {"before": 0, "after": 2}}
    assert entries("escalationpolicy.deleted")[0].changes["name"] == {
        "before": "on call",
        "after": None,
    }

    monitor = monitor_services.monitor_create(org=business, data=dict(MONITOR))
    policy = client.post(
        "/api/v1/healing-policies/",
        {"name": "dry run", "monitor": str(monitor.pk), "action_kind": "noop"},
        format="json",
    ).json()
    url = f"/api/v1/healing-policies/{policy['id']}/"
    assert client.patch(url, {"max_attempts": 5}, format="json").status_code == 200
    assert client.delete(url).status_code == 204
    [updated] = entries("healingpolicy.updated")
    assert (updated.actor_user_id, updated.changes) == (
        owner.pk,
        {"max_attempts": {"before": 3, "after": 5}},
    )
    assert len(entries("healingpolicy.deleted")) == 1
