"""Doors without a person at the keyboard: the API's pause/resume/check, management commands,
and the system's own writes (a downgrade pausing monitors and disabling channels, an expired
comp, the purge of dead keys). Each leaves the expected entries, in its own transaction."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
import yaml
from django.core.management import call_command
from django.utils import timezone

from apps.alerts.models import Channel
from apps.alerts.services import channels as channel_services
from apps.alerts.services import outbox
from apps.audit.models import AuditEntry
from apps.billing import services as billing_services
from apps.monitors import services as monitor_services
from apps.monitors.models import Monitor
from apps.plans import services as plan_services
from apps.plans.services import organization_change_plan
from apps.tenants import services as tenant_services
from apps.tenants.models import ApiKey
from tests.audit.conftest import the_entry

pytestmark = pytest.mark.django_db

TCP = {"name": "api", "kind": "tcp", "config": {"host": "127.0.0.1", "port": 9}}


@pytest.fixture(autouse=True)
def _no_broker_for_alerts(monkeypatch):
    monkeypatch.setattr(outbox, "_send", lambda *a, **k: None)


def entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("object_repr"))


# --- the API's pause, resume and check-now ----------------------------------------------------


def test_pausing_resuming_and_checking_through_the_api_are_recorded_as_the_key(
    business, key_client
):
    client = key_client(business)
    monitor = monitor_services.monitor_create(org=business, data=dict(TCP))
    base = f"/api/v1/monitors/{monitor.pk}"

    assert client.post(f"{base}/pause/", HTTP_X_REQUEST_ID="api-pause").status_code == 200
    assert client.post(f"{base}/pause/").status_code == 200  # again: nothing changes
    paused = the_entry("monitor.paused")
    assert (paused.actor_kind, paused.actor_api_key_id) == ("api_key", client.api_key.pk)
    assert paused.request_id == "api-pause"
    assert paused.changes["paused"] == {"before": False, "after": True}

    assert client.post(f"{base}/resume/").status_code == 200
    assert the_entry("monitor.resumed").changes["status"]["before"] == "paused"

    checked = client.post(f"{base}/check/")
    assert checked.status_code == 200
    assert the_entry("monitor.checked").data["outcome"] == checked.json()["outcome"]


def test_a_patch_that_only_pauses_records_the_pause_alone(business, owner, client_for):
    monitor = monitor_services.monitor_create(org=business, data=dict(TCP))
    client = client_for(owner)

    client.patch(f"/api/v1/monitors/{monitor.pk}/", {"paused": True}, format="json")
    assert the_entry("monitor.paused").actor_user_id == owner.pk
    assert not AuditEntry.objects.filter(action="monitor.updated").exists()

    client.patch(
        f"/api/v1/monitors/{monitor.pk}/", {"paused": False, "name": "api-2"}, format="json"
    )
    assert the_entry("monitor.updated").changes == {"name": {"before": "api", "after": "api-2"}}
    assert the_entry("monitor.resumed").actor_user_id == owner.pk


# --- management commands --------------------------------------------------------------------


def test_apply_monitors_is_recorded_as_the_command(org, tmp_path):
    monitor_services.monitor_create(org=org, data={**TCP, "name": "old"})
    monitor_services.monitor_create(org=org, data={**TCP, "name": "web"})
    before = set(AuditEntry.objects.values_list("pk", flat=True))
    doc = {
        "version": 1,
        "monitors": [
            {**TCP, "slug": "web", "name": "web", "tags": ["prod"]},
            {**TCP, "slug": "new", "name": "new"},
        ],
    }
    path = tmp_path / "monitors.yaml"
    path.write_text(yaml.safe_dump(doc))

    call_command("apply_monitors", str(path), "--org", org.slug, "--prune", stdout=StringIO())

    made = AuditEntry.objects.exclude(pk__in=before)
    assert sorted(made.values_list("action", "object_repr")) == [
        ("monitor.created", "new"),
        ("monitor.deleted", "old"),
        ("monitor.updated", "web"),
    ]
    assert set(made.values_list("actor_kind", "actor_label")) == {
        ("system", "manage.py apply_monitors")
    }
    assert made.get(action="monitor.updated").changes == {"tags": {"before": [], "after": ["prod"]}}


def test_import_services_is_recorded_as_the_command(org, tmp_path):
    good = {"services": [{"name": "interpreter", "url": "http://127.0.0.1:9/health"}]}
    path = tmp_path / "services.json"
    path.write_text(json.dumps(good))

    call_command("import_services", str(path), "--org", org.slug, stdout=StringIO())

    entry = the_entry("monitor.created")
    assert (entry.actor_kind, entry.actor_label) == ("system", "manage.py import_services")
    assert entry.object_repr == "interpreter"


# --- what the system does on its own ---------------------------------------------------------


def test_a_downgrade_records_each_monitor_it_pauses_and_channel_it_disables(business):
    for i in range(12):
        monitor_services.monitor_create(
            org=business, data={**TCP, "name": f"m{i:02d}", "interval_seconds": 60}
        )
    chat, _ = channel_services.channel_create(
        org=business, kind="apprise", name="chat", config={"url": "json://127.0.0.1:9/chat"}
    )

    organization_change_plan(org=business, plan_code="free", source="billing")

    paused = entries("monitor.paused")
    assert [e.object_repr for e in paused] == ["m10", "m11"]  # the newest two over 10
    assert {(e.actor_kind, e.data["cause"], e.data["plan"]) for e in paused} == {
        ("system", "plan.changed", "free")
    }
    assert paused[0].changes["paused"] == {"before": False, "after": True}
    assert set(Monitor.objects.filter(paused=True).values_list("name", flat=True)) == {
        "m10",
        "m11",
    }
    raised = entries("monitor.updated")
    assert len(raised) == 12
    assert raised[0].changes == {"interval_seconds": {"before": 60, "after": 300}}
    disabled = the_entry("channel.disabled")
    assert (disabled.object_id, disabled.actor_kind) == (str(chat.pk), "system")
    assert disabled.changes["enabled"] == {"before": True, "after": False}


def test_a_failed_downgrade_leaves_neither_pauses_nor_their_entries(business, monkeypatch):
    for i in range(11):
        monitor_services.monitor_create(org=business, data={**TCP, "name": f"m{i:02d}"})
    from apps.plans.models import PlanChange

    def refuse(**kwargs):
        raise RuntimeError("the plan change could not be written")

    monkeypatch.setattr(PlanChange.objects, "create", refuse)  # after the handlers ran
    with pytest.raises(RuntimeError):
        organization_change_plan(org=business, plan_code="free", source="billing")

    assert not Monitor.objects.filter(paused=True).exists()
    assert not AuditEntry.objects.filter(action="monitor.paused").exists()


def test_a_channel_disabled_by_a_permanent_error_is_recorded_as_the_system(org):
    channel, _ = channel_services.channel_create(
        org=org, kind="webhook", name="hook", config={"url": "http://127.0.0.1:9/h"}
    )

    assert channel_services.channel_disable(channel_id=channel.pk, reason="webhook answered 410")
    assert not channel_services.channel_disable(channel_id=channel.pk, reason="again")

    entry = the_entry("channel.disabled")
    assert (entry.actor_kind, entry.actor_label) == ("system", "delivery")
    assert entry.changes == {
        "disabled_reason": {"before": "", "after": "webhook answered 410"},
        "enabled": {"before": True, "after": False},
    }
    assert not Channel.objects.get(pk=channel.pk).enabled


def test_an_expired_comp_is_ended_by_the_system_and_recorded(org, operator):
    from apps.audit.services import acting_as, user_actor

    with acting_as(user_actor(operator)):
        billing_services.comp_grant(
            org=org,
            plan_code="pro",
            reason="trial extension",
            expires_at=timezone.now() + timedelta(days=1),
            actor=operator,
        )
    assert the_entry("plan.comped").actor_kind == "operator"

    assert billing_services.billing_sweep(now=timezone.now() + timedelta(days=2)) == 1

    ended = the_entry("plan.comp_ended")
    assert ended.actor_kind == "system"
    back = [e for e in entries("plan.changed") if e.changes["plan"]["after"] == "free"]
    assert [(e.actor_kind, e.data["source"]) for e in back] == [("system", "comp expired")]


def test_purged_keys_are_recorded_as_deleted_by_the_system(org):
    key = tenant_services.api_key_create(org=org, name="old ci", scopes=["read"]).api_key
    tenant_services.api_key_revoke(api_key=key)
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now() - timedelta(days=40))

    assert tenant_services.api_keys_purge_dead() == 1

    entry = the_entry("apikey.deleted")
    assert (entry.actor_kind, entry.actor_label) == ("system", "api key purge")
    assert entry.object_id == str(key.pk)
    assert entry.changes["name"] == {"before": "old ci", "after": None}


def test_limit_overrides_set_by_a_service_call_outside_a_request_are_the_systems(org):
    plan_services.limit_override_set(org=org, limit="monitors", value=25, reason="import")
    entry = the_entry("plan.limit_overridden")
    assert entry.actor_kind == "system"
    assert entry.data == {"limit": "monitors"}


def test_healing_run_by_an_api_key_is_the_keys_and_not_automatic(business, key_client):
    from apps.healing.models import HealingAttempt
    from apps.healing.services import policies as healing_policies
    from apps.incidents.models import Incident
    from tests.incidents.conftest import down, feed

    monitor = monitor_services.monitor_create(org=business, data={**TCP, "failure_threshold": 1})
    healing_policies.policy_create(
        org=business, data={"name": "dry", "monitor": monitor, "action_kind": "noop"}
    )
    feed(monitor, down())
    incident = Incident.objects.get(monitor=monitor)
    client = key_client(business)

    assert client.post(f"/api/v1/incidents/{incident.pk}/heal").status_code == 202

    run = the_entry("healing.run")
    assert (run.actor_kind, run.actor_api_key_id) == ("api_key", client.api_key.pk)
    attempt = HealingAttempt.objects.get(pk=run.object_id)
    assert attempt.automatic is False


def test_registering_records_the_founder_joining_as_owner(db):
    org, _token = tenant_services.user_register(
        email="founder@example.test",
        password="a long and unusual passphrase 7",
        organization_name="Initech",
    )
    entry = the_entry("member.added")
    assert entry.organization_id == org.pk
    assert (entry.actor_kind, entry.actor_label) == ("user", "founder@example.test")
    assert entry.changes == {"role": {"before": None, "after": "owner"}}


def test_an_api_key_acknowledging_and_resolving_is_recorded_as_the_key(org, key_client):
    from apps.incidents.models import Incident
    from tests.incidents.conftest import down, feed

    monitor = monitor_services.monitor_create(org=org, data={**TCP, "failure_threshold": 1})
    feed(monitor, down())
    incident = Incident.objects.get(monitor=monitor)
    client = key_client(org)
    base = f"/api/v1/incidents/{incident.pk}"

    assert client.post(f"{base}/acknowledge/", {}, format="json").status_code == 200
    resolved = client.post(f"{base}/resolve/", {"note": "rolled back"}, format="json")

    assert resolved.status_code == 200
    assert resolved.json()["timeline"][-1]["data"]["auto"] is False  # someone asked
    for action in ("incident.acknowledged", "incident.resolved"):
        entry = the_entry(action)
        assert (entry.actor_kind, entry.actor_api_key_id) == ("api_key", client.api_key.pk)
    assert the_entry("incident.resolved").changes == {
        "status": {"before": "acknowledged", "after": "resolved"}
    }


def test_an_incident_resolving_on_its_own_is_not_a_person_s_action(org):
    from apps.incidents.models import Incident, IncidentStatus
    from tests.incidents.conftest import down, feed, up

    monitor = monitor_services.monitor_create(org=org, data={**TCP, "failure_threshold": 1})
    feed(monitor, down())
    feed(monitor, up())

    assert Incident.objects.get(monitor=monitor).status == IncidentStatus.RESOLVED
    assert not AuditEntry.objects.filter(action="incident.resolved").exists()
