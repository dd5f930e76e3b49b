"""Who hears what is connected once, in healthorch/wiring.py, in the order the product needs."""

from __future__ import annotations

from apps.alerts.services import channels as alert_channels
from apps.alerts.services import escalation
from apps.core.events import Seam
from apps.healing import services as healing
from apps.incidents import accounting as incident_accounting
from apps.incidents import events as incident_events
from apps.incidents import machine as incident_machine
from apps.monitors import events as monitor_events
from apps.monitors import services as monitors
from apps.plans import events as plan_events
from apps.plans.models import Limit
from apps.tenants import selectors as tenants
from healthorch import wiring


def _everything() -> dict:
    seams = {
        name: seam.listeners
        for module in (monitor_events, incident_events)
        for name, seam in vars(module).items()
        if isinstance(seam, Seam)
    }
    return {
        **seams,
        "plan changes": dict(plan_events.plan_change_handlers),
        "usage counters": dict(plan_events.usage_counters),
    }


def test_every_seam_has_its_listeners_in_order():
    # Healing learns which organizations have policies before incidents open, so its
    # per-incident listener answers from that one query.
    assert monitor_events.status_changes.listeners == (
        healing.policy_presence_prime,
        incident_machine.handle_status_changes,
    )
    assert monitor_events.fold.listeners == (incident_machine.handle_fold,)
    assert monitor_events.hour_context.listeners == (incident_accounting.hour_context,)
    assert monitor_events.status_change.listeners == ()
    assert incident_events.incident_events.listeners == (escalation.on_incident_events,)
    assert incident_events.incident_event.listeners == (healing.on_incident_event,)
    assert plan_events.plan_change_handlers == {
        "monitors": monitors.apply_plan_limits,
        "alerts": alert_channels.apply_plan_features,
    }
    assert plan_events.usage_counters == {
        Limit.MONITORS: monitors.count_active_monitors,
        Limit.MEMBERS: tenants.member_count,
    }


def test_connecting_again_changes_nothing():
    before = _everything()
    wiring.connect()
    assert _everything() == before


def test_a_muted_seam_calls_nobody_and_hears_again_afterwards():
    seam = Seam("test.news")
    heard = []
    seam.connect(lambda **kw: heard.append(kw))
    with seam.muted():
        assert seam.send(n=1) == []
    seam.send(n=2)
    assert heard == [{"n": 2}]
