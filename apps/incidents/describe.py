"""An incident's cause and timeline told as sentences, for people (the console); the stored
JSON stays what the API returns."""

from __future__ import annotations

from typing import Any

from apps.core.actors import actor_label
from apps.core.facts import value_text
from apps.incidents.models import CUSTOM_RULE, EventKind, Incident, IncidentEvent, RuleKind

# What each rule means, completing "Opened because ...".
_RULE_SENTENCES = {
    RuleKind.SERVICE_DOWN: "the monitor was down",
    RuleKind.CRITICAL_SERVICE_DOWN: "a critical monitor was down",
    RuleKind.CONSECUTIVE_FAILURES: "the monitor failed several checks in a row",
    RuleKind.HIGH_RESPONSE_TIME: "responses were slower than the monitor allows",
    RuleKind.LOW_UPTIME: "uptime fell below the rule's threshold",
    RuleKind.CERTIFICATE_EXPIRY: "the TLS certificate is close to expiry",
    RuleKind.SERVICE_RECOVERY: "the monitor recovered",
    RuleKind.FLAPPING: "the monitor kept changing between up and down",
    RuleKind.ERROR_SIGNATURE: "an error log signature was new or logged far above its usual rate",
}

#: keys the sentence already tells, left out of the table under it
CAUSE_TOLD = frozenset(
    {"rule", "outcome", "status_code", "error_class", "error_message", "checked_at", "failures"}
)


def cause_sentence(incident: Incident) -> str:
    cause: dict[str, Any] = incident.cause or {}
    rule = cause.get("rule") or incident.rule
    if rule == CUSTOM_RULE or cause.get("raised_by") == "api":
        return (
            "Raised by hand through the API"
            + (
                f" by {value_text(cause['api_key'].get('name'))}"
                if isinstance(cause.get("api_key"), dict)
                else ""
            )
            + "."
        )
    because = _RULE_SENTENCES.get(rule, f"the rule {rule!r} matched")
    parts = [f"Opened because {because}"]
    if cause.get("checked_at"):
        parts.append(f"at the check of {value_text(cause['checked_at'])}")
    said = []
    if cause.get("outcome"):
        said.append(f"it answered {cause['outcome']}")
    if cause.get("status_code"):
        said.append(f"HTTP {cause['status_code']}")
    if cause.get("error_class"):
        said.append(str(cause["error_class"]).replace("_", " "))
    sentence = " ".join(parts)
    if said:
        sentence += ": " + ", ".join(said)
    if cause.get("error_message"):
        sentence += f" ({cause['error_message']})"
    if cause.get("failures"):
        sentence += f", after {cause['failures']} failed check(s)"
    if cause.get("suppressed_by"):
        sentence += f"; not notified ({str(cause['suppressed_by']).replace('_', ' ')})"
    return sentence + "."


#: keys of an event's data that are bookkeeping, not news
EVENT_QUIET = frozenset({"notify", "silence"})


def event_sentence(event: IncidentEvent) -> str:
    """One timeline line: what happened and who did it."""
    who = actor_label(event.actor, event.actor_key, system="")
    data = event.data or {}
    kind = event.kind
    if kind == EventKind.OPENED:
        text = "Opened"
    elif kind == EventKind.FAILED_AGAIN:
        text = f"Failed again ({event.count} time(s))" if event.count > 1 else "Failed again"
    elif kind == EventKind.NOTIFIED:
        text = "Notifications sent"
    elif kind == EventKind.ESCALATED:
        step = data.get("step")
        text = f"Escalated to step {step}" if step is not None else "Escalated"
    elif kind == EventKind.ACKNOWLEDGED:
        text = "Acknowledged"
    elif kind == EventKind.NOTE:
        text = "Note added"
    elif kind == EventKind.RESOLVED:
        text = "Resolved automatically" if data.get("auto") and not who else "Resolved"
    elif kind == EventKind.SUPPRESSED and data.get("snoozed_until"):
        text = f"Snoozed until {value_text(data['snoozed_until'])}"
    else:
        text = event.get_kind_display()
    if who:
        text += f" by {who}"
    return text + "."
