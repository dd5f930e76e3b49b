"""Who hears what: every listener of every seam, connected in one place.

Apps import only downward (the import contract in pyproject.toml). When a lower app has news a
higher one must act on, the lower app declares a seam in its `events` module and sends on it;
the higher app's listener is connected here, once, when Django has loaded every app
(`HealthorchConfig.ready`). Reading this file top to bottom tells the whole story of what
happens after a check result is recorded, an incident event is written or a plan changes.

Order matters where listeners of one seam depend on each other; each seam's listeners are
called in the order they are connected below.
"""

from __future__ import annotations

from apps.alerts.services import channels as alert_channels
from apps.alerts.services import escalation
from apps.billing import webhooks as billing_webhooks
from apps.console import metrics as console_metrics
from apps.core import views as core_views
from apps.healing import services as healing
from apps.incidents import accounting as incident_accounting
from apps.incidents import events as incident_events
from apps.incidents import machine as incident_machine
from apps.monitors import events as monitor_events
from apps.monitors import selectors as monitor_selectors
from apps.monitors import services as monitors
from apps.plans import events as plan_events
from apps.plans.models import Limit
from apps.tenants import selectors as tenants
from healthorch import metrics


def connect() -> None:
    """Connect every listener (connecting twice changes nothing)."""
    # A batch of check results was folded into monitor statuses (inside its transaction).
    # Healing first learns in one query which organizations of the batch have policies, so its
    # per-incident listener below costs nothing for a thousand monitors changing at once;
    # then incidents open, resolve and escalate.
    monitor_events.status_changes.connect(healing.policy_presence_prime)
    monitor_events.status_changes.connect(incident_machine.handle_status_changes)
    monitor_events.fold.connect(incident_machine.handle_fold)
    # An hour of results is rolled up: maintenance windows and dependencies live in incidents.
    monitor_events.hour_context.connect(incident_accounting.hour_context)

    # Incident events were written: alerts notifies and escalates (the whole batch in one
    # insert), healing decides whether to act on each opened or failing-again incident.
    incident_events.incident_events.connect(escalation.on_incident_events)
    incident_events.incident_event.connect(healing.on_incident_event)

    # An organization changed plan: each app fits its rows to the new limits (recorded on the
    # PlanChange under its name).
    plan_events.on_plan_change("monitors", monitors.apply_plan_limits)
    plan_events.on_plan_change("alerts", alert_channels.apply_plan_features)
    # Counted limits: who counts what.
    plan_events.count_usage_with(Limit.MONITORS, monitors.count_active_monitors)
    plan_events.count_usage_with(Limit.MEMBERS, tenants.member_count)

    # /health asks the monitors app whether due checks are being dispatched.
    core_views.health_reports.connect(monitor_selectors.scheduler_health)

    # Stripe's webhooks, as dj-stripe verifies and stores them, reach billing.
    billing_webhooks.connect()

    # Beat's /metrics reads the platform's backlogs (due checks, undelivered notifications).
    metrics.read_state_with(console_metrics.platform_state)
