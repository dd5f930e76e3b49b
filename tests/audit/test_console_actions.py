"""The console's write actions: each asks first, then acts through its service, says what it
did, and is audited. Viewers are not offered them and a forged POST does nothing; another
tenant's object in the selection is ignored."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.alerts.models import Notification, NotificationKind, NotificationStatus
from apps.alerts.services import channels as channel_services
from apps.alerts.services import outbox
from apps.audit.models import AuditEntry
from apps.billing.models import PlanComp
from apps.incidents.models import Incident, IncidentStatus
from apps.monitors import services as monitor_services
from apps.monitors.models import CheckResult, Monitor
from apps.plans.models import LimitOverride
from apps.tenants.models import Organization
from tests.audit.conftest import the_entry
from tests.conftest import console
from tests.incidents.conftest import down, feed

pytestmark = pytest.mark.django_db

TCP = {"name": "api", "kind": "tcp", "config": {"host": "127.0.0.1", "port": 9}}


@pytest.fixture(autouse=True)
def _no_broker_for_alerts(monkeypatch):
    monkeypatch.setattr(outbox, "_send", lambda *a, **k: None)


def act(client, changelist: str, action: str, objects, *, confirm: bool = True, **headers):
    data = {"action": action, "_selected_action": [str(o.pk) for o in objects]}
    if confirm:
        data["confirm"] = "yes"
    return client.post(f"/admin/{changelist}/", data, follow=True, **headers)


def said(response) -> str:
    return " | ".join(str(m) for m in response.context["messages"])


# --- monitors: pause, resume, check now -------------------------------------------------------


def test_pausing_from_the_console_asks_first_then_pauses_and_records_it(business, member):
    monitor = monitor_services.monitor_create(org=business, data=dict(TCP))
    client = console(member)

    asked = act(client, "monitors/monitor", "pause", [monitor], confirm=False)

    page = asked.content.decode()
    assert "Pause 1 monitor(s)?" in page
    assert "api" in page
    assert not Monitor.objects.get(pk=monitor.pk).paused
    assert not AuditEntry.objects.filter(action="monitor.paused").exists()

    done = act(client, "monitors/monitor", "pause", [monitor], HTTP_X_REQUEST_ID="pause-1")

    assert "Paused 1 monitor(s)." in said(done)
    assert Monitor.objects.get(pk=monitor.pk).paused
    entry = the_entry("monitor.paused")
    assert (entry.actor_kind, entry.actor_user_id) == ("user", member.pk)
    assert entry.request_id == "pause-1"
    assert entry.changes["paused"] == {"before": False, "after": True}
    assert entry.changes["status"]["after"] == "paused"

    act(client, "monitors/monitor", "resume", [monitor])
    resumed = the_entry("monitor.resumed")
    assert resumed.changes["paused"] == {"before": True, "after": False}
    assert not Monitor.objects.get(pk=monitor.pk).paused


def test_an_operator_checks_a_monitor_now_and_it_is_recorded(business, operator):
    monitor = monitor_services.monitor_create(org=business, data=dict(TCP))
    client = console(operator)

    asked = act(client, "monitors/monitor", "check_now", [monitor], confirm=False)
    assert "Run 1 check(s) now?" in asked.content.decode()
    assert not CheckResult.objects.filter(monitor=monitor).exists()

    done = act(client, "monitors/monitor", "check_now", [monitor])

    # Nothing listens on port 9: a real refused connection, recorded like a scheduled check.
    assert "api: down" in said(done)
    result = CheckResult.objects.get(monitor=monitor)
    entry = the_entry("monitor.checked")
    assert entry.actor_kind == "operator"
    assert entry.data == {"result": result.pk, "outcome": "down"}


def test_viewers_are_not_offered_write_actions_and_a_forged_post_does_nothing(business, viewer):
    monitor = monitor_services.monitor_create(org=business, data=dict(TCP))
    client = console(viewer)

    listing = client.get("/admin/monitors/monitor/").content.decode()
    assert 'value="pause"' not in listing
    assert 'value="check_now"' not in listing

    forged = act(client, "monitors/monitor", "pause", [monitor])

    assert forged.status_code == 200  # the list again: no action is theirs to run
    assert not Monitor.objects.get(pk=monitor.pk).paused
    assert not AuditEntry.objects.filter(action="monitor.paused").exists()


def test_another_tenants_monitor_in_a_forged_selection_is_left_alone(business, outsider, other_org):
    theirs = monitor_services.monitor_create(org=business, data=dict(TCP))
    client = console(outsider)

    forged = act(client, "monitors/monitor", "pause", [theirs])

    assert "None of the selected monitors can be paused." in said(forged)
    assert not Monitor.objects.get(pk=theirs.pk).paused
    assert not AuditEntry.objects.filter(action="monitor.paused").exists()


# --- incidents: acknowledge, resolve ------------------------------------------------------------


def test_acknowledging_and_resolving_from_the_console_ask_first_and_are_recorded(org, owner):
    monitor = monitor_services.monitor_create(org=org, data={**TCP, "failure_threshold": 1})
    feed(monitor, down())
    incident = Incident.objects.get(monitor=monitor)
    client = console(owner)

    asked = act(client, "incidents/incident", "acknowledge", [incident], confirm=False)
    assert "Acknowledge 1 incident(s)?" in asked.content.decode()
    assert Incident.objects.get(pk=incident.pk).status == IncidentStatus.TRIGGERED

    act(client, "incidents/incident", "acknowledge", [incident])
    ack = the_entry("incident.acknowledged")
    assert (ack.actor_kind, ack.actor_user_id) == ("user", owner.pk)

    done = act(client, "incidents/incident", "resolve", [incident])
    assert "1 incident(s) updated." in said(done)
    resolved = the_entry("incident.resolved")
    assert resolved.changes == {"status": {"before": "acknowledged", "after": "resolved"}}
    assert Incident.objects.get(pk=incident.pk).resolved_by == owner


def test_a_viewer_cannot_acknowledge_from_the_console(org, viewer):
    monitor = monitor_services.monitor_create(org=org, data={**TCP, "failure_threshold": 1})
    feed(monitor, down())
    incident = Incident.objects.get(monitor=monitor)

    forged = act(console(viewer), "incidents/incident", "acknowledge", [incident])

    assert 'value="acknowledge"' not in forged.content.decode()
    assert Incident.objects.get(pk=incident.pk).status == IncidentStatus.TRIGGERED
    assert not AuditEntry.objects.filter(action="incident.acknowledged").exists()


# --- notifications and channels: retry dead, send a test ----------------------------------------


def _webhook(org):
    channel, _ = channel_services.channel_create(
        org=org, kind="webhook", name="hook", config={"url": "http://127.0.0.1:9/h"}
    )
    return channel


def _dead(org, channel) -> Notification:
    now = timezone.now()
    return Notification.objects.create(
        organization=org,
        channel=channel,
        kind=NotificationKind.TEST,
        severity="info",
        idempotency_key=f"dead:{now.timestamp()}",
        next_attempt_at=now,
        status=NotificationStatus.DEAD,
        attempts=3,
        max_attempts=3,
        last_error="webhook answered 500",
    )


def test_retrying_a_dead_notification_asks_first_and_is_recorded(org, owner, outsider):
    dead = _dead(org, _webhook(org))
    client = console(owner)

    asked = act(client, "alerts/notification", "retry_dead", [dead], confirm=False)
    assert "Send 1 dead notification(s) again" in asked.content.decode()
    assert Notification.objects.get(pk=dead.pk).status == NotificationStatus.DEAD

    done = act(client, "alerts/notification", "retry_dead", [dead])

    assert "Queued 1 notification(s) for delivery." in said(done)
    assert Notification.objects.get(pk=dead.pk).status == NotificationStatus.PENDING
    entry = the_entry("notification.retried")
    assert (entry.actor_user_id, entry.object_id) == (owner.pk, str(dead.pk))

    # Another tenant's dead notification, forged into the selection, is not touched.
    refused = act(console(outsider), "alerts/notification", "retry_dead", [dead])
    assert "No dead notification to retry." in said(refused)


def test_sending_a_test_notification_from_the_console_is_recorded(org, admin_user):
    channel = _webhook(org)
    client = console(admin_user)

    asked = act(client, "alerts/channel", "send_test", [channel], confirm=False)
    assert "Send a test message through 1 channel(s) now?" in asked.content.decode()
    assert not Notification.objects.filter(channel=channel).exists()

    done = act(client, "alerts/channel", "send_test", [channel])

    # Port 9 refuses: the test is sent for real and its failure reported.
    assert "hook (webhook): test" in said(done)
    sent = Notification.objects.get(channel=channel, kind=NotificationKind.TEST)
    entry = the_entry("channel.tested")
    assert entry.actor_user_id == admin_user.pk
    assert entry.data == {"notification": str(sent.pk), "status": sent.status}


# --- plans: comps, overrides, the plan itself ---------------------------------------------------


def test_an_operator_comps_a_plan_changes_it_and_ends_the_comp_all_recorded(org, operator, owner):
    tenant_list = console(owner).get("/admin/tenants/organization/").content.decode()
    assert 'value="comp_plan"' not in tenant_list  # operators only
    forged = act(console(owner), "tenants/organization", "comp_plan", [org])
    assert not forged.redirect_chain  # no comp form: the action is not theirs
    client = console(operator)
    shortcut = act(client, "tenants/organization", "comp_plan", [org], confirm=False)
    assert shortcut.redirect_chain[-1][0].endswith(
        f"/admin/billing/plancomp/add/?organization={org.pk}"
    )

    expires = (timezone.now() + timedelta(days=14)).replace(microsecond=0)
    client.post(
        "/admin/billing/plancomp/add/",
        {
            "organization": str(org.pk),
            "plan": "business",
            "reason": "design partner",
            "expires_at_0": expires.strftime("%Y-%m-%d"),
            "expires_at_1": expires.strftime("%H:%M:%S"),
        },
    )
    comped = the_entry("plan.comped")
    assert comped.actor_kind == "operator"
    assert comped.changes["plan"] == {"before": None, "after": "business"}
    changed = the_entry("plan.changed")
    assert changed.changes == {"plan": {"before": "free", "after": "business"}}
    assert (changed.actor_kind, changed.data["source"]) == ("operator", "comp")

    comp = PlanComp.objects.get()
    asked = act(client, "billing/plancomp", "end_now", [comp], confirm=False)
    assert "End 1 comp(s) now?" in asked.content.decode()
    act(client, "billing/plancomp", "end_now", [comp])
    assert the_entry("plan.comp_ended").actor_user_id == operator.pk
    assert Organization.objects.get(pk=org.pk).plan_id == "free"


def test_limit_overrides_set_in_the_console_are_recorded(org, operator):
    client = console(operator)
    client.post(
        "/admin/plans/limitoverride/add/",
        {"organization": str(org.pk), "limit": "monitors", "value": "50", "reason": "migration"},
    )
    entry = the_entry("plan.limit_overridden")
    assert entry.actor_kind == "operator"
    assert entry.changes["value"] == {"before": None, "after": 50}
    override = LimitOverride.objects.get()
    client.post(f"/admin/plans/limitoverride/{override.pk}/delete/", {"post": "yes"})
    assert the_entry("plan.limit_override_removed").changes["value"]["before"] == 50


def test_an_operator_changing_the_plan_in_the_organization_form_is_recorded(org, operator):
    from tests.audit.conftest import form_data

    client = console(operator)
    url = f"/admin/tenants/organization/{org.pk}/change/"
    data = {**form_data(client.get(url)), "plan": "pro"}
    for key in [k for k in data if k.startswith("memberships-")]:
        data.pop(key)
    data.update({"memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"})

    assert client.post(url, data).status_code == 302

    entry = the_entry("plan.changed")
    assert (entry.actor_kind, entry.actor_user_id) == ("operator", operator.pk)
    assert entry.changes == {"plan": {"before": "free", "after": "pro"}}
    assert entry.data["source"] == "admin"
