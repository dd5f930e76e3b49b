"""The console is a door like the API: what operators and tenant members change there goes
through the same services and leaves the same audit entries (operator or user, with the
request id), in the admin's own transaction; a refusal stores nothing and says why."""

from __future__ import annotations

import json

import pytest

from apps.alerts.models import Channel, EscalationPolicy
from apps.alerts.services import channels as channel_services
from apps.alerts.services import outbox
from apps.audit.models import AuditEntry
from apps.healing.services import policies as healing_policies
from apps.monitors import services as monitor_services
from apps.monitors.admin import MonitorAdmin
from apps.monitors.models import Monitor
from apps.tenants.models import ApiKey, Membership
from tests.audit.conftest import form_data, the_entry
from tests.conftest import console
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TCP = {"name": "api", "kind": "tcp", "config": {"host": "127.0.0.1", "port": 9}}


@pytest.fixture(autouse=True)
def _no_broker_for_alerts(monkeypatch):
    monkeypatch.setattr(outbox, "_send", lambda *a, **k: None)


def webhook(org, name="hook"):
    channel, _ = channel_services.channel_create(
        org=org, kind="webhook", name=name, config={"url": "http://127.0.0.1:9/h"}
    )
    return channel


# --- monitors (operators edit them in the console) --------------------------------------------


def test_an_operator_editing_a_monitor_is_recorded_as_the_operator_with_the_request_id(
    business, operator
):
    monitor = monitor_services.monitor_create(org=business, data=dict(TCP))
    client = console(operator)
    url = f"/admin/monitors/monitor/{monitor.pk}/change/"
    data = {**form_data(client.get(url)), "name": "api-v2", "interval_seconds": 600}

    response = client.post(url, data, HTTP_X_REQUEST_ID="console-1")

    assert response.status_code == 302
    entry = the_entry("monitor.updated")
    assert (entry.actor_kind, entry.actor_user_id) == ("operator", operator.pk)
    assert entry.actor_label == operator.email
    assert entry.request_id == "console-1"
    assert entry.object_id == str(monitor.pk)
    assert entry.changes == {
        "interval_seconds": {"before": 300, "after": 600},
        "name": {"before": "api", "after": "api-v2"},
    }
    monitor.refresh_from_db()
    assert monitor.schedule.interval_seconds == 600  # the service rescheduled it


def test_an_operator_adds_and_deletes_a_monitor_through_the_services(business, operator):
    client = console(operator)
    add = form_data(client.get(f"/admin/monitors/monitor/add/?organization={business.pk}"))
    add.update(
        name="db port",
        slug="db-port",
        kind="tcp",
        cfg_tcp_host="127.0.0.1",
        cfg_tcp_port="5432",
    )

    assert client.post("/admin/monitors/monitor/add/", add).status_code == 302

    monitor = Monitor.objects.get(slug="db-port")
    created = the_entry("monitor.created")
    assert (created.actor_kind, created.object_id) == ("operator", str(monitor.pk))
    assert created.changes["name"] == {"before": None, "after": "db port"}
    assert monitor.next_check_at is not None  # scheduled, as one made through the API

    gone = client.post(f"/admin/monitors/monitor/{monitor.pk}/delete/", {"post": "yes"})
    assert gone.status_code == 302
    deleted = the_entry("monitor.deleted")
    assert deleted.actor_user_id == operator.pk
    assert deleted.changes["name"] == {"before": "db port", "after": None}


def test_a_failure_after_the_save_rolls_back_the_change_and_its_entry(
    business, operator, monkeypatch
):
    monitor = monitor_services.monitor_create(org=business, data=dict(TCP))
    client = console(operator)
    url = f"/admin/monitors/monitor/{monitor.pk}/change/"
    data = {**form_data(client.get(url)), "name": "renamed"}

    def crash(*args, **kwargs):
        raise RuntimeError("the console's history could not be written")

    monkeypatch.setattr(MonitorAdmin, "log_change", crash)  # fails after save_model ran
    with pytest.raises(RuntimeError):
        client.post(url, data)

    assert Monitor.objects.get(pk=monitor.pk).name == "api"
    assert not AuditEntry.objects.filter(action="monitor.updated").exists()


def test_a_refused_console_save_says_why_and_stores_nothing(org, operator):
    monitor = monitor_services.monitor_create(org=org, data=dict(TCP))  # free: 300 s minimum
    client = console(operator)
    url = f"/admin/monitors/monitor/{monitor.pk}/change/"
    data = {**form_data(client.get(url)), "interval_seconds": 30}

    response = client.post(url, data, follow=True)

    assert response.status_code == 200
    said = [str(m) for m in response.context["messages"]]
    assert any("Nothing was saved: upgrade required" in m for m in said), said
    assert Monitor.objects.get(pk=monitor.pk).interval_seconds == 300
    assert not AuditEntry.objects.filter(action="monitor.updated").exists()


# --- channels, escalation and healing policies (tenant members edit them) --------------------


def test_a_tenant_admin_edits_and_deletes_a_channel_as_themselves(business, admin_user):
    channel = webhook(business)
    client = console(admin_user)
    url = f"/admin/alerts/channel/{channel.pk}/change/"
    data = {**form_data(client.get(url)), "name": "pager hook"}

    assert client.post(url, data, HTTP_X_REQUEST_ID="console-2").status_code == 302

    entry = the_entry("channel.updated")
    assert (entry.actor_kind, entry.actor_user_id) == ("user", admin_user.pk)
    assert entry.request_id == "console-2"
    assert entry.changes == {"name": {"before": "hook", "after": "pager hook"}}

    assert client.post(f"/admin/alerts/channel/{channel.pk}/delete/", {"post": "yes"}).status_code
    deleted = the_entry("channel.deleted")
    assert (deleted.actor_user_id, deleted.object_id) == (admin_user.pk, str(channel.pk))
    assert not Channel.objects.filter(pk=channel.pk).exists()


def test_re_enabling_a_channel_the_plan_lacks_is_refused_in_the_console_too(org, owner):
    channel = webhook(org)
    Channel.objects.filter(pk=channel.pk).update(kind="apprise", enabled=False)
    client = console(owner)
    url = f"/admin/alerts/channel/{channel.pk}/change/"
    data = {**form_data(client.get(url)), "enabled": "on"}

    response = client.post(url, data, follow=True)

    said = " ".join(str(m) for m in response.context["messages"])
    assert "upgrade required" in said
    assert "integrations" in said
    assert not Channel.objects.get(pk=channel.pk).enabled
    assert not AuditEntry.objects.filter(action="channel.updated").exists()


def test_viewers_cannot_save_and_outsiders_get_404_on_channel_pages(business, viewer, outsider):
    channel = webhook(business)
    url = f"/admin/alerts/channel/{channel.pk}/change/"
    forged = console(viewer).post(url, {"name": "pwned", "severities": "[]"})
    assert forged.status_code == 403
    assert console(outsider).get(url).status_code == 404
    assert console(outsider).post(url, {"name": "pwned"}).status_code == 404
    assert Channel.objects.get(pk=channel.pk).name == "hook"
    assert not AuditEntry.objects.filter(action__startswith="channel.u").exists()


def _policy_form(org, channel, *, name="on call", severities=("critical",)) -> dict:
    return {
        "organization": str(org.pk),
        "name": name,
        "severities": json.dumps(list(severities)),
        "repeat": "0",
        "enabled": "on",
        "steps-TOTAL_FORMS": "1",
        "steps-INITIAL_FORMS": "0",
        "steps-MIN_NUM_FORMS": "0",
        "steps-MAX_NUM_FORMS": "1000",
        "steps-0-position": "0",
        "steps-0-delay_minutes": "5",
        "steps-0-channels": [str(channel.pk)],
    }


def test_an_escalation_policy_made_in_the_console_goes_through_the_service(business, owner):
    channel = webhook(business)
    client = console(owner)

    made = client.post("/admin/alerts/escalationpolicy/add/", _policy_form(business, channel))

    assert made.status_code == 302, made.content.decode()[-2000:]
    policy = EscalationPolicy.objects.get(name="on call")
    assert [(s.delay_minutes, [c.pk for c in s.channels.all()]) for s in policy.steps.all()] == [
        (5, [channel.pk])
    ]
    entry = the_entry("escalationpolicy.created")
    assert (entry.actor_kind, entry.actor_user_id) == ("user", owner.pk)
    assert entry.changes["steps"]["after"] == [{"delay_minutes": 5, "channels": [str(channel.pk)]}]

    # A second policy for the same severity is the service's refusal: shown, nothing stored.
    again = client.post(
        "/admin/alerts/escalationpolicy/add/",
        _policy_form(business, channel, name="shadow"),
        follow=True,
    )
    said = " ".join(str(m) for m in again.context["messages"])
    assert "already covered by 'on call'" in said
    assert not EscalationPolicy.objects.filter(name="shadow").exists()
    assert AuditEntry.objects.filter(action="escalationpolicy.created").count() == 1


def test_a_member_deleting_a_healing_policy_in_the_console_is_recorded(business, member):
    monitor = monitor_services.monitor_create(org=business, data=dict(TCP))
    policy, _ = healing_policies.policy_create(
        org=business, data={"name": "dry", "monitor": monitor, "action_kind": "noop"}
    )
    client = console(member)

    gone = client.post(f"/admin/healing/healingpolicy/{policy.pk}/delete/", {"post": "yes"})

    assert gone.status_code == 302
    entry = the_entry("healingpolicy.deleted")
    assert (entry.actor_kind, entry.actor_user_id) == ("user", member.pk)
    assert entry.changes["name"] == {"before": "dry", "after": None}


# --- members and API keys ---------------------------------------------------------------------


def test_a_tenant_admin_adds_changes_and_removes_a_member_in_the_console(business, admin_user):
    newcomer = UserFactory(email="new@example.test")
    client = console(admin_user)

    added = client.post(
        "/admin/tenants/membership/add/",
        {"organization": str(business.pk), "user": str(newcomer.pk), "role": "member"},
    )
    assert added.status_code == 302
    membership = Membership.objects.get(user=newcomer)
    entry = the_entry("member.added")
    assert (entry.actor_user_id, entry.object_repr) == (admin_user.pk, newcomer.email)
    assert entry.changes == {"role": {"before": None, "after": "member"}}

    url = f"/admin/tenants/membership/{membership.pk}/change/"
    assert client.post(url, {"role": "viewer"}).status_code == 302
    assert the_entry("member.role_changed").changes == {
        "role": {"before": "member", "after": "viewer"}
    }

    # The changelist's bulk delete goes through the service too.
    bulk = {"action": "delete_selected", "_selected_action": [str(membership.pk)], "post": "yes"}
    assert client.post("/admin/tenants/membership/", bulk).status_code == 302
    removed = the_entry("member.removed")
    assert (removed.actor_user_id, removed.object_repr) == (admin_user.pk, newcomer.email)
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_an_admin_cannot_make_an_owner_in_the_console(business, admin_user):
    newcomer = UserFactory()
    response = console(admin_user).post(
        "/admin/tenants/membership/add/",
        {"organization": str(business.pk), "user": str(newcomer.pk), "role": "owner"},
        follow=True,
    )
    said = " ".join(str(m) for m in response.context["messages"])
    assert "Only an owner can add another owner" in said
    assert not Membership.objects.filter(user=newcomer).exists()
    assert not AuditEntry.objects.filter(action="member.added").exists()


def test_api_keys_created_renamed_revoked_and_deleted_in_the_console_are_recorded(
    business, operator
):
    client = console(operator)
    made = client.post(
        "/admin/tenants/apikey/add/",
        {"organization": str(business.pk), "name": "ci", "scopes": ["read"]},
    )
    assert made.status_code == 302
    key = ApiKey.objects.get(name="ci")
    assert the_entry("apikey.created").actor_kind == "operator"

    url = f"/admin/tenants/apikey/{key.pk}/change/"
    assert client.post(url, {"name": "ci-2"}).status_code == 302
    assert the_entry("apikey.updated").changes == {"name": {"before": "ci", "after": "ci-2"}}

    selection = {"action": "revoke", "_selected_action": [str(key.pk)], "confirm": "yes"}
    client.post("/admin/tenants/apikey/", selection)
    assert the_entry("apikey.revoked").actor_user_id == operator.pk

    assert client.post(f"/admin/tenants/apikey/{key.pk}/delete/", {"post": "yes"}).status_code
    deleted = the_entry("apikey.deleted")
    assert (deleted.actor_kind, deleted.object_id) == ("operator", str(key.pk))
    assert not ApiKey.objects.filter(pk=key.pk).exists()
