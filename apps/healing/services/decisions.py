"""Deciding: the incident-event listener, the engine's verdict recorded as an attempt, the
one-click `heal_request`, and the `healing` lines on the incident timeline."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.audit.services import SYSTEM, Actor, api_key_actor, current_actor, user_actor
from apps.core.actors import actor_label, api_key_ref
from apps.core.errors import Conflict, ServiceError
from apps.healing import anomaly, engine, selectors
from apps.healing.models import (
    AttemptStatus,
    Decision,
    HealingAttempt,
    HealingPolicy,
)
from apps.healing.services import queue
from apps.healing.services.policies import org_has_policies
from apps.incidents import events
from apps.incidents.models import EventKind, Incident, IncidentEvent
from apps.monitors.models import Monitor
from apps.plans.selectors import entitlements_for
from apps.tenants.models import ApiKey

logger = logging.getLogger(__name__)

# --- the timeline ---------------------------------------------------------------------------


def timeline_record(
    attempt: HealingAttempt,
    step: str,
    *,
    at: datetime,
    note: str,
    actor: AbstractBaseUser | None = None,
    actor_key: dict[str, str] | None = None,
    **data: Any,
) -> IncidentEvent | None:
    """One `healing` line on the incident's timeline (never notified: alerts ignore it), by
    a user, an API key (its snapshot) or, with neither, the engine."""
    if attempt.incident_id is None:
        return None
    event = IncidentEvent.objects.create(
        incident_id=attempt.incident_id,
        organization_id=attempt.organization_id,
        kind=EventKind.HEALING,
        at=at,
        actor=actor,
        actor_key=actor_key if actor is None else None,
        note=note[:2000],
        data={
            "notify": False,
            "attempt": str(attempt.pk),
            "step": step,
            "decision": attempt.decision,
            "status": attempt.status,
            "action": attempt.action_kind,
            "path": attempt.path,
            **data,
        },
    )
    incident = attempt.incident if attempt.incident_id else None
    if incident is not None:
        events.publish(incident=incident, event=event)
    return event


# --- deciding -------------------------------------------------------------------------------


def policy_view(policy: HealingPolicy) -> engine.PolicyView:
    return engine.PolicyView(
        name=policy.name,
        action_kind=policy.action_kind,
        rules=list(policy.rules or []),
        severities=list(policy.severities or []),
        max_attempts=policy.max_attempts,
        cooldown_minutes=policy.cooldown_minutes,
        auto=policy.auto,
        use_anomaly=policy.use_anomaly,
    )


def anomaly_for(*, monitor: Monitor, now: datetime) -> anomaly.AnomalyVerdict:
    """The anomaly model over the monitor's latency, then its metric series (metric
    monitors): the first anomalous verdict, else the latency verdict."""
    verdict = anomaly.detect(selectors.latency_series(monitor=monitor, now=now), now=now)
    if verdict.anomalous:
        return verdict
    samples = selectors.metric_series(monitor=monitor, now=now)
    if samples:
        metric = anomaly.detect(samples, now=now, name="metric")
        if metric.anomalous or not verdict.usable:
            return metric
    return verdict


def evaluate(
    *, incident: Incident, policy: HealingPolicy, now: datetime
) -> tuple[engine.Verdict, engine.History]:
    """The engine's verdict for an incident under a policy (reads only)."""
    ent = entitlements_for(incident.organization)
    history = selectors.history_for(incident_id=incident.pk, monitor_id=incident.monitor_id)
    verdict_anomaly, error = None, ""
    anomaly_allowed = ent.has("ml_healing")
    if policy.use_anomaly and anomaly_allowed:
        try:
            verdict_anomaly = anomaly_for(monitor=incident.monitor, now=now)
        except Exception as exc:  # the model must never stop the rules from deciding
            logger.exception("anomaly model failed", extra={"incident": str(incident.pk)})
            error = type(exc).__name__
    verdict = engine.decide(
        facts=engine.Facts.of(incident),
        policy=policy_view(policy),
        history=history,
        now=now,
        auto_allowed=ent.has("auto_orchestration"),
        anomaly_allowed=anomaly_allowed,
        anomaly=verdict_anomaly,
        anomaly_error=error,
    )
    return verdict, history


STATUS_FOR_DECISION = {
    Decision.EXECUTE: AttemptStatus.PENDING,
    Decision.SUGGEST: AttemptStatus.SUGGESTED,
    Decision.NOTIFY_ONLY: AttemptStatus.SKIPPED,
    Decision.SKIP: AttemptStatus.SKIPPED,
}


def heal_evaluate(
    *, incident: Incident, trigger: str, now: datetime | None = None
) -> HealingAttempt | None:
    """Decide for an incident that opened (or failed again) and record the decision.

    On `opened` every verdict is recorded; on `failed_again` only a verdict to act is (each
    failed check would otherwise add a "still cooling down" row), plus the first
    "max attempts reached" so the timeline says why healing stopped. Must run inside the
    transaction that wrote the event: the state machine holds the monitor's row lock there,
    which serialises decisions for one monitor, so the cooldown cannot be raced.
    """
    # Suppressed incidents (a parent dependency is down, or a silence holds) are left alone:
    # healing a child whose parent is down fixes nothing.
    if incident.monitor_id is None or incident.suppressed:
        return None
    now = now or timezone.now()
    policy = selectors.policy_for(monitor=incident.monitor)
    if policy is None:
        return None
    verdict, _history = evaluate(incident=incident, policy=policy, now=now)
    if trigger != EventKind.OPENED and not verdict.acts:
        said_already = HealingAttempt.objects.filter(
            incident=incident, status=AttemptStatus.SKIPPED, inputs__guard="max_attempts"
        ).exists()
        if verdict.guard != "max_attempts" or said_already:
            return None
    return _record_verdict(
        incident=incident, policy=policy, verdict=verdict, now=now, trigger=trigger
    )


def _record_verdict(
    *,
    incident: Incident,
    policy: HealingPolicy,
    verdict: engine.Verdict,
    now: datetime,
    trigger: str,
    user: AbstractBaseUser | None = None,
    api_key: ApiKey | None = None,
    manual: bool = False,
) -> HealingAttempt:
    # A person or an API key asked (manual), or the engine acted on its own (the system).
    manual = manual or user is not None or api_key is not None
    key = api_key_ref(api_key) if user is None else None
    attempt = HealingAttempt.objects.create(
        organization_id=incident.organization_id,
        incident=incident,
        monitor_id=incident.monitor_id,
        policy=policy,
        decision=verdict.decision,
        path=verdict.path,
        condition=verdict.condition,
        action_kind=verdict.action_kind,
        explanation=verdict.explanation,
        inputs={**verdict.inputs, "trigger": trigger, "guard": verdict.guard},
        status=STATUS_FOR_DECISION[verdict.decision],
        automatic=verdict.acts and not manual,
        requested_by=user,
        requested_by_key=key,
    )
    attempt.incident = incident
    timeline_record(attempt, "decided", at=now, note=verdict.explanation, actor=user, actor_key=key)
    if attempt.status == AttemptStatus.PENDING:
        attempt_start(attempt, actor=_requester(user, api_key) if manual else SYSTEM)
    logger.info(
        "healing decided",
        extra={
            "incident": str(incident.pk),
            "attempt": str(attempt.pk),
            "decision": attempt.decision,
            "condition": attempt.condition,
        },
    )
    return attempt


def _requester(user: AbstractBaseUser | None, api_key: ApiKey | None) -> Actor:
    """Who asked for a manual run, for the audit log: the user, the API key, else whoever the
    request or task says (current_actor)."""
    if user is not None:
        return user_actor(user)
    if api_key is not None:
        return api_key_actor(api_key)
    return current_actor()


def attempt_start(attempt: HealingAttempt, *, actor: Actor) -> None:
    """A run is about to happen: audit it and send the task once the decision commits."""
    audit.record(
        org=attempt.organization_id,
        action="healing.run",
        target=attempt,
        object_repr=f"{attempt.action_kind} for {attempt.incident or attempt.monitor}",
        data={
            "incident": str(attempt.incident_id) if attempt.incident_id else None,
            "policy": str(attempt.policy_id) if attempt.policy_id else None,
            "action": attempt.action_kind,
            "automatic": attempt.automatic,
        },
        actor=actor,
    )
    pk = str(attempt.pk)
    transaction.on_commit(lambda: queue.send("execute", pk))


def on_incident_event(*, incident: Incident, event: IncidentEvent) -> None:
    """Hears incidents.events.incident_event (connected in healthorch/wiring.py)."""
    if event.kind not in (EventKind.OPENED, EventKind.FAILED_AGAIN):
        return
    if incident.monitor_id is None or not org_has_policies(incident.organization_id):
        return
    heal_evaluate(incident=incident, trigger=event.kind)


def heal_request(
    *, incident: Incident, user: AbstractBaseUser | None, api_key: ApiKey | None = None
) -> HealingAttempt:
    """A person (or an API key) runs healing on an incident: the pending suggestion, or a
    fresh decision.

    The same guards as automatic runs apply (409 with the reason): an attempt in flight, max
    attempts for the incident, the monitor's cooldown. Available on every plan: this is the
    one-click path that `auto_orchestration` automates.
    """
    if incident.monitor_id is None:
        raise ServiceError("A custom incident has no monitor to heal.", code="no_monitor")
    now = timezone.now()
    with transaction.atomic():
        # Serialises this request with the state machine's decisions for the same monitor.
        monitor = Monitor.objects.select_for_update().get(pk=incident.monitor_id)
        incident = Incident.objects.select_related("organization").get(pk=incident.pk)
        incident.monitor = monitor
        if not incident.is_open:
            raise Conflict("The incident is resolved already.", code="already_resolved")
        policy = selectors.policy_for(monitor=monitor)
        if policy is None:
            raise ServiceError("No enabled healing policy covers this monitor.", code="no_policy")
        history = selectors.history_for(incident_id=incident.pk, monitor_id=monitor.pk)
        refusal = engine.attempt_refusal(policy_view(policy), history, now)
        if refusal is not None:
            raise Conflict(refusal.sentence, code=refusal.guard)
        suggestion = (
            HealingAttempt.objects.select_for_update()
            .filter(incident=incident, status=AttemptStatus.SUGGESTED, policy=policy)
            .order_by("-created_at")
            .first()
        )
        key = api_key_ref(api_key) if user is None else None
        note = f"Run by {actor_label(user, key, system='a person')}: {policy.action_kind}."
        if suggestion is not None and suggestion.action_kind == policy.action_kind:
            # Compare-and-set: two clicks on the same suggestion run it once.
            claimed = HealingAttempt.objects.filter(
                pk=suggestion.pk, status=AttemptStatus.SUGGESTED
            ).update(
                status=AttemptStatus.PENDING,
                decision=Decision.EXECUTE,
                requested_by=user,
                requested_by_key=key,
                updated_at=now,
            )
            if not claimed:
                raise Conflict("This suggestion is being run already.", code="in_flight")
            suggestion.refresh_from_db()
            suggestion.incident = incident
            timeline_record(suggestion, "requested", at=now, note=note, actor=user, actor_key=key)
            attempt_start(suggestion, actor=_requester(user, api_key))
            return suggestion
        verdict = engine.Verdict(
            Decision.EXECUTE,
            "manual",
            "requested",
            policy.action_kind,
            note,
            {"facts": engine.Facts.of(incident).as_dict(), "policy": policy.name},
        )
        return _record_verdict(
            incident=incident,
            policy=policy,
            verdict=verdict,
            now=now,
            trigger="request",
            user=user,
            api_key=api_key,
            manual=True,
        )
