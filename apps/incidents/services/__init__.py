"""Writes for incidents (docs/decisions/0008-services-own-state-changes.md). Split by concern:

- `apps.incidents.opening` (outside this package: the state machine and the sweeps write
  through it, and `configuration` runs the sweeps): open (or fold into the open one), failed
  again, resolve automatically, custom incidents; every timeline line is published to the
  listeners (apps.alerts, apps.healing) inside the same transaction, a batch as one
  `events.publish_many` call;
- `actions`: people acting on incidents (acknowledge, note, resolve, snooze);
- `configuration`: alert rules, dependencies, maintenance windows and silences.

`data["notify"]` on each event tells the listeners whether people hear about it.
"""

from apps.incidents.opening import (
    Opening,
    incident_create_custom,
    incident_open,
    incident_seen,
    incidents_open_many,
    incidents_resolve_many,
    incidents_seen_many,
    open_for,
    open_locked,
)
from apps.incidents.services.actions import (
    SNOOZE_DEFAULT_MINUTES,
    incident_acknowledge,
    incident_delete,
    incident_note,
    incident_resolve,
    incident_snooze,
)
from apps.incidents.services.configuration import (
    alert_rule_set,
    alert_rule_update,
    alert_rules_ensure,
    dependency_create,
    dependency_delete,
    window_create,
    window_delete,
    window_update,
)

__all__ = [
    "SNOOZE_DEFAULT_MINUTES",
    "Opening",
    "alert_rule_set",
    "alert_rule_update",
    "alert_rules_ensure",
    "dependency_create",
    "dependency_delete",
    "incident_acknowledge",
    "incident_create_custom",
    "incident_delete",
    "incident_note",
    "incident_open",
    "incident_resolve",
    "incident_seen",
    "incident_snooze",
    "incidents_open_many",
    "incidents_resolve_many",
    "incidents_seen_many",
    "open_for",
    "open_locked",
    "window_create",
    "window_delete",
    "window_update",
]
