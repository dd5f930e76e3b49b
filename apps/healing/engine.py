"""The decision engine: given the facts of an incident and a policy, what to do and why.

Pure and deterministic (no queries, no clock of its own): the service gathers the facts,
the engine answers a `Verdict` whose `explanation` says in words why, and the service records
it. Two paths:

- **rules** (always): the RULES table below, evaluated in order, first match wins;
- **anomaly** (`ml_healing` and the policy's `use_anomaly`): the anomaly model's verdict
  (apps.healing.anomaly) may act where no hard rule does (latency stepped or drifted up).
  When the model cannot be used (too little data, an error), the rules decide and the
  explanation says the model was skipped and why.

Guards after the match, in order: the policy acts on that condition and severity, no
attempt is in flight, attempts for this incident < max_attempts, the monitor's cooldown has
passed; then `auto` + `auto_orchestration` execute, otherwise it is a suggestion.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from apps.healing.anomaly import AnomalyVerdict
from apps.healing.models import Decision


@dataclass(frozen=True)
class Facts:
    """What the engine may look at: the incident and its failing check (from incident.cause)."""

    rule: str
    severity: str
    error_class: str = ""
    status_code: int | None = None
    response_time_ms: float | None = None
    outcome: str = ""

    @classmethod
    def of(cls, incident: Any) -> Facts:
        cause = incident.cause or {}
        return cls(
            rule=incident.rule,
            severity=incident.severity,
            error_class=cause.get("error_class") or "",
            status_code=cause.get("status_code"),
            response_time_ms=cause.get("response_time_ms"),
            outcome=cause.get("outcome") or "",
        )

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "")}


@dataclass(frozen=True)
class Rule:
    name: str
    matches: Callable[[Facts], bool]
    # "act": run the policy's action; "suggest": recommend `suggestion` to a person, never
    # run automatically; "notify_only": people are told, nothing is done.
    verdict: str
    explanation: str
    suggestion: str = ""


RULES: list[Rule] = [
    Rule(
        "certificate",
        lambda f: f.rule == "certificate_expiry" or f.error_class in ("tls", "cert_expiring"),
        "notify_only",
        "A certificate problem is fixed by renewing or reinstalling the certificate, not by "
        "restarting the service: notify only, never act.",
    ),
    Rule(
        "high_response_time",
        lambda f: f.rule == "high_response_time" or f.error_class == "slow",
        "suggest",
        "The service answers, only slowly: more capacity helps more than a restart, so "
        "scale_up is suggested to a person instead of acting.",
        suggestion="scale_up",
    ),
    Rule(
        "timeout",
        lambda f: f.error_class == "timeout",
        "act",
        "The check timed out: the service is hung or overloaded, which a restart usually clears.",
    ),
    Rule(
        "http_5xx",
        lambda f: f.status_code is not None and 500 <= int(f.status_code) <= 599,
        "act",
        "The service answered HTTP {status_code}: a server-side failure that a restart "
        "usually clears.",
    ),
    Rule(
        "connection",
        lambda f: f.error_class == "connection",
        "act",
        "Connections were refused or reset: the process is down or not listening, which a "
        "restart fixes.",
    ),
]
RULE_NAMES = [r.name for r in RULES]
# Conditions a policy may list in `rules` (the anomaly path's kinds included).
CONDITIONS = [*RULE_NAMES, "latency_step", "latency_drift", "metric_step", "metric_drift"]


@dataclass(frozen=True)
class History:
    """What already happened: attempts that acted on this incident, the monitor's last one."""

    acted_on_incident: int = 0
    last_acted_on_monitor: datetime | None = None
    in_flight: bool = False


@dataclass(frozen=True)
class PolicyView:
    """The policy fields the engine reads (a HealingPolicy or anything shaped like it)."""

    name: str
    action_kind: str
    rules: list[str]
    severities: list[str]
    max_attempts: int = 3
    cooldown_minutes: int = 5
    auto: bool = False
    use_anomaly: bool = False


@dataclass(frozen=True)
class Verdict:
    decision: str
    path: str
    condition: str
    action_kind: str
    explanation: str
    inputs: dict[str, Any] = field(default_factory=dict)
    # The guard that stopped it: "condition", "severity", "in_flight", "max_attempts",
    # "cooldown"; "" when none did.
    guard: str = ""

    @property
    def acts(self) -> bool:
        return self.decision == Decision.EXECUTE


def match_rule(facts: Facts) -> Rule | None:
    for rule in RULES:
        if rule.matches(facts):
            return rule
    return None


@dataclass(frozen=True)
class Refusal:
    """Why no new attempt may start now: `guard` names the rule, `sentence` says it."""

    guard: str
    sentence: str


def attempt_refusal(policy: PolicyView, history: History, now: datetime) -> Refusal | None:
    """The guards every attempt passes, automatic or asked for by a person: one in flight per
    incident, at most `max_attempts` per incident, and `cooldown_minutes` per monitor."""
    if history.in_flight:
        return Refusal("in_flight", "An attempt is already under way for this incident.")
    if history.acted_on_incident >= policy.max_attempts:
        return Refusal(
            "max_attempts",
            f"Max attempts reached: {history.acted_on_incident} of {policy.max_attempts} "
            "for this incident.",
        )
    if history.last_acted_on_monitor is not None:
        until = history.last_acted_on_monitor + timedelta(minutes=policy.cooldown_minutes)
        if now < until:
            return Refusal(
                "cooldown",
                f"Cooldown: the last attempt on this monitor was at "
                f"{history.last_acted_on_monitor:%H:%M:%S} UTC; no new attempt before "
                f"{until:%H:%M:%S} UTC ({policy.cooldown_minutes} min).",
            )
    return None


def decide(
    *,
    facts: Facts,
    policy: PolicyView,
    history: History,
    now: datetime,
    auto_allowed: bool,
    anomaly_allowed: bool,
    anomaly: AnomalyVerdict | None = None,
    anomaly_error: str = "",
) -> Verdict:
    """The verdict for one incident under one policy. See the module docstring for the order."""
    inputs: dict[str, Any] = {"facts": facts.as_dict(), "policy": policy.name}
    notes: list[str] = []
    rule = match_rule(facts)
    path, condition, action_kind = "rules", "", policy.action_kind
    if rule is not None:
        condition = rule.name
        why = rule.explanation.format(**facts.__dict__)
    else:
        why = (
            f"No rule matches this failure ({facts.error_class or facts.outcome or facts.rule}"
            f"{f', HTTP {facts.status_code}' if facts.status_code else ''}): a restart is not "
            "known to fix it."
        )

    # The anomaly path may act where the rules would not (a latency step before any hard
    # threshold is crossed); it never overrides a notify-only or suggest-only rule.
    if policy.use_anomaly:
        if not anomaly_allowed:
            notes.append("Anomaly model not used: the plan lacks ml_healing; the rules decide.")
        elif anomaly_error:
            notes.append(f"Anomaly model failed ({anomaly_error}); the rules decide.")
        elif anomaly is None or not anomaly.usable:
            reason = anomaly.reason if anomaly is not None else "no data"
            notes.append(f"Anomaly model not used: {reason}; the rules decide.")
        else:
            inputs["anomaly"] = anomaly.as_dict()
            if anomaly.anomalous and (rule is None or rule.verdict == "act"):
                path, condition = "anomaly", anomaly.kind
                why = f"Anomaly: {anomaly.reason}."
            elif not anomaly.anomalous:
                notes.append(f"Anomaly model: {anomaly.reason}.")

    def verdict(decision: str, text: str, kind: str = action_kind, guard: str = "") -> Verdict:
        explanation = " ".join([text, *notes]).strip()
        return Verdict(decision, path, condition, kind, explanation, inputs, guard)

    if path == "rules":
        if rule is None:
            return verdict(Decision.SKIP, why)
        if rule.verdict == "notify_only":
            return verdict(Decision.NOTIFY_ONLY, why, "")
        if rule.verdict == "suggest":
            return verdict(Decision.SUGGEST, why, rule.suggestion)
    if condition not in policy.rules:
        return verdict(
            Decision.SKIP,
            f"{why} Policy '{policy.name}' does not act on {condition}.",
            guard="condition",
        )
    if facts.severity not in policy.severities:
        return verdict(
            Decision.SKIP,
            f"{why} Policy '{policy.name}' does not act on {facts.severity} incidents.",
            guard="severity",
        )
    refusal = attempt_refusal(policy, history, now)
    if refusal is not None:
        return verdict(Decision.SKIP, f"{why} {refusal.sentence}", guard=refusal.guard)
    if not policy.auto:
        return verdict(
            Decision.SUGGEST,
            f"{why} Policy '{policy.name}' suggests {action_kind}; a person runs it.",
        )
    if not auto_allowed:
        return verdict(
            Decision.SUGGEST,
            f"{why} Suggested, not run: automatic execution needs the auto_orchestration feature.",
        )
    return verdict(
        Decision.EXECUTE,
        f"{why} Running {action_kind} (attempt {history.acted_on_incident + 1} of "
        f"{policy.max_attempts}).",
    )
