"""Writes for healing: policies, decisions, running actions, verifying, and the sweep.

The story of one attempt (each step a row update plus a `healing` event on the incident's
timeline, all in one transaction):

1. `heal_evaluate` (the incident-event listener, inside the transaction that opened the
   incident or recorded another failure) asks the engine and records the verdict:
   `suggested`, `skipped` (with why), or `pending` when it will run automatically.
   `heal_request` (POST /incidents/{id}/heal) turns a suggestion, or a fresh decision, into a
   `pending` attempt on a person's say-so.
2. `attempt_execute` (a task, after commit) claims `pending` -> `running` by compare-and-set,
   calls the action outside any transaction, records `succeeded` or `failed` with the
   outcome and duration. A failure escalates the incident at once when the policy says so.
3. `attempt_verify` (a task, `verify_after_seconds` later; the sweep catches lost ones)
   re-checks the monitor for real, records `recovered` or `not_recovered`, and escalates on
   the latter when the policy says so.
"""

from apps.healing.services.attempts import attempt_execute, attempt_verify, healing_sweep
from apps.healing.services.decisions import (
    anomaly_for,
    evaluate,
    heal_evaluate,
    heal_request,
    on_incident_event,
)
from apps.healing.services.policies import (
    policy_create,
    policy_create_from,
    policy_delete,
    policy_presence_prime,
    policy_secrets,
    policy_update,
)
from apps.healing.services.scan import anomaly_scan

__all__ = [
    "anomaly_for",
    "anomaly_scan",
    "attempt_execute",
    "attempt_verify",
    "evaluate",
    "heal_evaluate",
    "heal_request",
    "healing_sweep",
    "on_incident_event",
    "policy_create",
    "policy_create_from",
    "policy_delete",
    "policy_presence_prime",
    "policy_secrets",
    "policy_update",
]
