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

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from rest_framework import serializers

from apps.audit import audit
from apps.audit.context import SYSTEM, Actor, user_actor
from apps.core import crypto
from apps.core.errors import Conflict, ServiceError
from apps.healing import anomaly, engine, selectors
from apps.healing.actions import REGISTRY, ActionError, ActionRequest, action_for
from apps.healing.models import (
    AttemptStatus,
    Decision,
    HealingAttempt,
    HealingPolicy,
    Verification,
)
from apps.incidents import events
from apps.incidents.models import EventKind, Incident, IncidentEvent
from apps.monitors.models import Monitor
from apps.plans.selectors import entitlements_for
from apps.plans.services import require_feature
from apps.tenants.models import Organization

logger = logging.getLogger(__name__)

# A `running` attempt older than this belongs to a worker that died mid-action (an action's
# own timeout is at most 30 s).
RUNNING_LEASE_SECONDS = 120
# A `pending` attempt whose task never arrived (broker lost it) is re-sent after this long.
PENDING_RESEND_SECONDS = 60


# --- policies -------------------------------------------------------------------------------

POLICY_FIELDS = [
    "name",
    "enabled",
    "monitor",
    "tag",
    "action_kind",
    "action_config",
    "action_secret",
    "rules",
    "severities",
    "max_attempts",
    "cooldown_minutes",
    "verify_after_seconds",
    "escalate_on_failure",
    "auto",
    "use_anomaly",
    "priority",
]


def _clean_action(kind: str, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    if kind not in REGISTRY:
        raise serializers.ValidationError({"action_kind": [f"Unknown action kind {kind!r}."]})
    cls = REGISTRY[kind]
    try:
        cleaned = cls.clean_config(config)
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({"action_config": exc.detail}) from exc
    return cls.split_secrets(cleaned)


def policy_secrets(policy: HealingPolicy) -> dict[str, Any]:
    return json.loads(crypto.decrypt(policy.action_secret)) if policy.action_secret else {}


def _gate(org: Organization, data: dict[str, Any]) -> None:
    if data.get("auto"):
        require_feature(org=org, feature="auto_orchestration")
    if data.get("use_anomaly"):
        require_feature(org=org, feature="ml_healing")


def policy_create(*, org: Organization, data: dict[str, Any]) -> tuple[HealingPolicy, dict]:
    """Create a policy; returns it with the action's secret half, which the caller shows once.
    402 when `auto` lacks auto_orchestration or `use_anomaly` lacks ml_healing."""
    data = dict(data)
    _gate(org, data)
    public, secret = _clean_action(data["action_kind"], data.pop("action_config", None) or {})
    with transaction.atomic():
        policy = HealingPolicy.objects.create(
            organization=org,
            action_config=public,
            action_secret=crypto.encrypt(json.dumps(secret)) if secret else "",
            **data,
        )
        audit.record(
            org=org, action="healingpolicy.created", target=policy, after=audit.snapshot(policy)
        )
        _policies_changed(org.pk)
    return policy, secret


def policy_update(*, policy: HealingPolicy, data: dict[str, Any]) -> HealingPolicy:
    data = dict(data)
    org = policy.organization
    # Turning automation on (or keeping it on while editing) needs the feature now.
    _gate(org, {k: v for k, v in data.items() if k in ("auto", "use_anomaly")})
    before = audit.snapshot(policy)
    kind = data.get("action_kind", policy.action_kind)
    if "action_config" in data or kind != policy.action_kind:
        config = data.pop("action_config", None)
        if config is None:
            config = {**policy.action_config, **policy_secrets(policy)}
        elif kind == policy.action_kind:
            # Omitted secrets are kept: the API never shows them, so a PATCH cannot resend them.
            config = {**policy_secrets(policy), **config}
        public, secret = _clean_action(kind, config)
        policy.action_config = public
        policy.action_secret = crypto.encrypt(json.dumps(secret)) if secret else ""
    for name, value in data.items():
        setattr(policy, name, value)
    if bool(policy.monitor_id) == bool(policy.tag):
        raise serializers.ValidationError({"tag": ["Give exactly one of monitor or tag."]})
    with transaction.atomic():
        policy.save()
        audit.record(org=org, action="healingpolicy.updated", target=policy, before=before)
        _policies_changed(org.pk)
    return policy


def policy_delete(*, policy: HealingPolicy) -> None:
    with transaction.atomic():
        audit.record(
            org=policy.organization_id,
            action="healingpolicy.deleted",
            target=policy,
            before=audit.snapshot(policy),
        )
        _policies_changed(policy.organization_id)
        policy.delete()


# --- the timeline ---------------------------------------------------------------------------


def _timeline(
    attempt: HealingAttempt,
    step: str,
    *,
    at: datetime,
    note: str,
    actor: AbstractBaseUser | None = None,
    **data: Any,
) -> IncidentEvent | None:
    """One `healing` line on the incident's timeline (never notified: alerts ignore it)."""
    if attempt.incident_id is None:
        return None
    event = IncidentEvent.objects.create(
        incident_id=attempt.incident_id,
        organization_id=attempt.organization_id,
        kind=EventKind.HEALING,
        at=at,
        actor=actor,
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


def _policy_view(policy: HealingPolicy) -> engine.PolicyView:
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
        policy=_policy_view(policy),
        history=history,
        now=now,
        auto_allowed=ent.has("auto_orchestration"),
        anomaly_allowed=anomaly_allowed,
        anomaly=verdict_anomaly,
        anomaly_error=error,
    )
    return verdict, history


_STATUS_FOR = {
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
) -> HealingAttempt:
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
        status=_STATUS_FOR[verdict.decision],
        automatic=verdict.acts and user is None,
        requested_by=user,
    )
    attempt.incident = incident
    _timeline(attempt, "decided", at=now, note=verdict.explanation, actor=user)
    if attempt.status == AttemptStatus.PENDING:
        _start(attempt, actor=user_actor(user) if user is not None else SYSTEM)
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


def _start(attempt: HealingAttempt, *, actor: Actor) -> None:
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
    transaction.on_commit(lambda: _send("execute", pk))


# {organization id: (monotonic expiry, has an enabled policy)}: the listener runs for every
# opened incident and every further failure, and most organizations have no policy; without
# this, a thousand monitors going down in one batch would cost a thousand policy queries.
# Policy writes in this process clear it; other processes see a new first policy within
# POLICY_PRESENCE_TTL seconds.
POLICY_PRESENCE_TTL = 10.0
_policy_presence: dict[Any, tuple[float, bool]] = {}


def _org_has_policies(org_id: Any) -> bool:
    now = time.monotonic()
    cached = _policy_presence.get(org_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    has = HealingPolicy.objects.filter(organization_id=org_id, enabled=True).exists()
    _policy_presence[org_id] = (now + POLICY_PRESENCE_TTL, has)
    return has


def policy_presence_prime(*, changes: list) -> None:
    """A batch listener on status changes (apps.monitors.state.on_status_changes): learn, in
    one query, which organizations of the batch have a policy, so the per-event listener that
    follows costs nothing for a thousand monitors changing at once."""
    now = time.monotonic()
    stale = {
        m.organization_id
        for m, _, _ in changes
        if (cached := _policy_presence.get(m.organization_id)) is None or cached[0] <= now
    }
    if not stale:
        return
    having = set(
        HealingPolicy.objects.filter(organization_id__in=stale, enabled=True)
        .order_by()
        .values_list("organization_id", flat=True)
        .distinct()
    )
    for org_id in stale:
        _policy_presence[org_id] = (now + POLICY_PRESENCE_TTL, org_id in having)


def _policies_changed(org_id: Any) -> None:
    _policy_presence.pop(org_id, None)
    transaction.on_commit(lambda: _policy_presence.pop(org_id, None))


def on_incident_event(*, incident: Incident, event: IncidentEvent) -> None:
    """Registered with apps.incidents.events from HealingConfig.ready."""
    if event.kind not in (EventKind.OPENED, EventKind.FAILED_AGAIN):
        return
    if incident.monitor_id is None or not _org_has_policies(incident.organization_id):
        return
    heal_evaluate(incident=incident, trigger=event.kind)


def heal_request(*, incident: Incident, user: AbstractBaseUser | None) -> HealingAttempt:
    """A person runs healing on an incident: the pending suggestion, or a fresh decision.

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
        if history.in_flight:
            raise Conflict("An attempt is already under way for this incident.", code="in_flight")
        if history.acted_on_incident >= policy.max_attempts:
            raise Conflict(
                f"Max attempts reached ({history.acted_on_incident} of {policy.max_attempts}).",
                code="max_attempts",
            )
        if history.last_acted_on_monitor is not None:
            until = history.last_acted_on_monitor + timedelta(minutes=policy.cooldown_minutes)
            if now < until:
                raise Conflict(
                    f"Cooldown: no new attempt on this monitor before {until.isoformat()}.",
                    code="cooldown",
                )
        suggestion = (
            HealingAttempt.objects.select_for_update()
            .filter(incident=incident, status=AttemptStatus.SUGGESTED, policy=policy)
            .order_by("-created_at")
            .first()
        )
        note = f"Run by {getattr(user, 'email', '') or 'a person'}: {policy.action_kind}."
        if suggestion is not None and suggestion.action_kind == policy.action_kind:
            # Compare-and-set: two clicks on the same suggestion run it once.
            claimed = HealingAttempt.objects.filter(
                pk=suggestion.pk, status=AttemptStatus.SUGGESTED
            ).update(
                status=AttemptStatus.PENDING,
                decision=Decision.EXECUTE,
                requested_by=user,
                updated_at=now,
            )
            if not claimed:
                raise Conflict("This suggestion is being run already.", code="in_flight")
            suggestion.refresh_from_db()
            suggestion.incident = incident
            _timeline(suggestion, "requested", at=now, note=note, actor=user)
            _start(suggestion, actor=user_actor(user) if user else SYSTEM)
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
            incident=incident, policy=policy, verdict=verdict, now=now, trigger="request", user=user
        )


# --- acting ---------------------------------------------------------------------------------


def _send(what: str, attempt_id: str, countdown: float | None = None) -> None:
    """Nudge a worker (tests replace this with a recorder they drain)."""
    from apps.healing import tasks

    task = tasks.healing_execute if what == "execute" else tasks.healing_verify
    task.apply_async(args=[attempt_id], countdown=countdown)


def _request_for(attempt: HealingAttempt) -> ActionRequest:
    incident, monitor = attempt.incident, attempt.monitor
    return ActionRequest(
        attempt_id=str(attempt.pk),
        organization=attempt.organization.slug,
        reason=attempt.explanation,
        condition=attempt.condition,
        incident={
            "id": str(incident.pk),
            "title": incident.title,
            "severity": incident.severity,
            "rule": incident.rule,
            "opened_at": incident.opened_at.isoformat(),
        }
        if incident
        else {},
        # Names and tags only: never the monitor's config, which may hold credentials.
        monitor={
            "id": str(monitor.pk),
            "name": monitor.name,
            "slug": monitor.slug,
            "tags": list(monitor.tags or []),
        }
        if monitor
        else {},
    )


def attempt_execute(*, attempt_id: Any) -> HealingAttempt | None:
    """Run a pending attempt's action once and record the outcome. Idempotent."""
    now = timezone.now()
    # Compare-and-set claim: a task delivered twice, or the sweep re-sending it while the
    # first is still queued, runs the action once.
    claimed = HealingAttempt.objects.filter(pk=attempt_id, status=AttemptStatus.PENDING).update(
        status=AttemptStatus.RUNNING, started_at=now, updated_at=now
    )
    if not claimed:
        return None
    attempt = HealingAttempt.objects.select_related(
        "policy", "incident", "monitor", "organization"
    ).get(pk=attempt_id)
    policy = attempt.policy
    started = time.perf_counter()
    details: dict[str, Any] = {}
    error = ""
    acts = True
    try:
        if policy is None:
            raise ActionError("the policy was deleted before the action ran")
        action = action_for(policy.action_kind, {**policy.action_config, **policy_secrets(policy)})
        acts = action.acts
        details = action.run(_request_for(attempt))
    except ActionError as exc:
        error, details = str(exc), exc.details
    except Exception as exc:  # a plugin bug is a failed attempt, never a stuck one
        logger.exception("healing action crashed", extra={"attempt": str(attempt_id)})
        error = f"action crashed: {type(exc).__name__}"
    duration_ms = int((time.perf_counter() - started) * 1000)
    finished = timezone.now()
    ok = not error
    verify = ok and acts and attempt.monitor_id is not None
    with transaction.atomic():
        attempt.status = AttemptStatus.SUCCEEDED if ok else AttemptStatus.FAILED
        attempt.outcome = details
        attempt.error = error[:500]
        attempt.finished_at = finished
        attempt.duration_ms = duration_ms
        if verify:
            attempt.verification = Verification.PENDING
            attempt.verify_due_at = finished + timedelta(seconds=policy.verify_after_seconds)
        attempt.save(
            update_fields=[
                "status",
                "outcome",
                "error",
                "finished_at",
                "duration_ms",
                "verification",
                "verify_due_at",
                "updated_at",
            ]
        )
        note = (
            f"{attempt.action_kind} succeeded in {duration_ms} ms"
            + (f"; verifying in {policy.verify_after_seconds} s." if verify else ".")
            if ok
            else f"{attempt.action_kind} failed after {duration_ms} ms: {error}"
        )
        _timeline(
            attempt,
            "succeeded" if ok else "failed",
            at=finished,
            note=note,
            duration_ms=duration_ms,
            error=attempt.error,
        )
        if verify:
            pk = str(attempt.pk)
            delay = float(policy.verify_after_seconds)
            transaction.on_commit(lambda: _send("verify", pk, countdown=delay))
    logger.info(
        "healing action finished",
        extra={"attempt": str(attempt.pk), "ok": ok, "duration_ms": duration_ms},
    )
    if not ok:
        _escalate(attempt, reason=f"healing failed: {error}")
    return attempt


def _escalate(attempt: HealingAttempt, *, reason: str) -> None:
    policy = attempt.policy
    if attempt.incident_id is None or policy is None or not policy.escalate_on_failure:
        return
    from apps.alerts.services.escalation import escalation_expedite

    with transaction.atomic():
        ran = escalation_expedite(incident_id=attempt.incident_id, reason=reason)
        HealingAttempt.objects.filter(pk=attempt.pk).update(escalated=True)
        attempt.escalated = True
        _timeline(
            attempt,
            "escalated",
            at=timezone.now(),
            note=f"Healing did not fix it; escalating now ({'next step sent' if ran else 'nothing left to escalate'}).",
            escalation_ran=ran,
        )


def attempt_verify(*, attempt_id: Any, now: datetime | None = None) -> HealingAttempt | None:
    """Re-check the monitor after an action and record whether it recovered. Idempotent."""
    from apps.monitors import engine as checks
    from apps.monitors.models import ACTIVE_KINDS, MonitorStatus

    now = now or timezone.now()
    # Compare-and-set: the countdown task and the sweep racing verify once.
    claimed = HealingAttempt.objects.filter(
        pk=attempt_id, verification=Verification.PENDING, verify_due_at__lte=now
    ).update(verification=Verification.CHECKING, updated_at=now)
    if not claimed:
        return None
    attempt = HealingAttempt.objects.select_related("policy", "incident", "monitor").get(
        pk=attempt_id
    )
    monitor = attempt.monitor
    facts: dict[str, Any] = {}
    recovered = False
    if monitor is None or monitor.paused:
        facts["reason"] = "monitor paused or deleted"
    elif monitor.kind in ACTIVE_KINDS:
        # A real check, recorded like any other: it feeds the state machine, so a recovery
        # here resolves the incident through the usual rules.
        results = checks.run_monitors([monitor.pk])
        if results:
            result = results[-1]
            recovered = result.outcome == "up"
            facts.update(outcome=result.outcome, result_id=result.pk)
            if result.error_class:
                facts["error_class"] = result.error_class
    else:
        monitor.refresh_from_db(fields=["status"])
        recovered = monitor.status == MonitorStatus.UP
        facts["status"] = monitor.status
    verified = timezone.now()
    with transaction.atomic():
        attempt.verification = Verification.RECOVERED if recovered else Verification.NOT_RECOVERED
        attempt.verified_at = verified
        attempt.outcome = {**attempt.outcome, "verification": facts}
        attempt.save(update_fields=["verification", "verified_at", "outcome", "updated_at"])
        if attempt.incident_id:
            attempt.incident.refresh_from_db()
        _timeline(
            attempt,
            "verified",
            at=verified,
            note="The monitor recovered after the action."
            if recovered
            else f"The monitor had not recovered ({facts.get('outcome') or facts.get('reason') or facts.get('status')}).",
            recovered=recovered,
        )
    if not recovered:
        _escalate(attempt, reason="healing did not recover the monitor")
    return attempt


def healing_sweep(*, now: datetime | None = None, limit: int = 50) -> dict[str, int]:
    """Bounded catch-up for lost tasks: due verifications, pending attempts whose task never
    came, and running attempts whose worker died (failed, and escalated as a failure)."""
    now = now or timezone.now()
    verified = 0
    for pk in (
        HealingAttempt.objects.filter(verification=Verification.PENDING, verify_due_at__lte=now)
        .order_by("verify_due_at")
        .values_list("pk", flat=True)[:limit]
    ):
        verified += attempt_verify(attempt_id=pk, now=now) is not None
    resent = 0
    for pk in HealingAttempt.objects.filter(
        status=AttemptStatus.PENDING, updated_at__lt=now - timedelta(seconds=PENDING_RESEND_SECONDS)
    ).values_list("pk", flat=True)[:limit]:
        _send("execute", str(pk))
        resent += 1
    lost = 0
    for attempt in HealingAttempt.objects.select_related("policy", "incident").filter(
        status=AttemptStatus.RUNNING,
        started_at__lt=now - timedelta(seconds=RUNNING_LEASE_SECONDS),
    )[:limit]:
        with transaction.atomic():
            if not HealingAttempt.objects.filter(
                pk=attempt.pk, status=AttemptStatus.RUNNING
            ).update(
                status=AttemptStatus.FAILED,
                error="worker lost during the action",
                finished_at=now,
                updated_at=now,
            ):
                continue
            attempt.status = AttemptStatus.FAILED
            _timeline(attempt, "failed", at=now, note="The worker running the action was lost.")
        _escalate(attempt, reason="healing worker lost")
        lost += 1
    return {"verified": verified, "resent": resent, "lost": lost}


# --- acting early: the anomaly scan ---------------------------------------------------------

ANOMALY_SCAN_MONITORS = 50
_SCAN_CURSOR_KEY = "healing:anomaly-scan:cursor"


def _tag_q(tag: str):
    from django.db import connection
    from django.db.models import Q

    # JSON list containment: native on PostgreSQL; on SQLite, the quoted tag in the JSON text.
    if connection.vendor == "postgresql":
        return Q(tags__contains=[tag])
    return Q(tags__icontains=f'"{tag}"')


def anomaly_scan(*, now: datetime | None = None, limit: int = ANOMALY_SCAN_MONITORS) -> int:
    """Look for latency/metric anomalies on monitors that are still up, before any hard
    threshold opens an incident, and let their policy act early (or suggest). Covers only
    enabled `use_anomaly` policies of organizations whose plan has `ml_healing`; at most
    `limit` monitors per run, round-robin (a cursor in the cache), so the sweep stays bounded.
    Records an attempt (no incident) only when the model flags something. Returns how many."""
    from django.core.cache import cache
    from django.db.models import Q

    from apps.incidents.models import OPEN_STATUSES
    from apps.monitors.models import MonitorStatus

    now = now or timezone.now()
    policies = list(
        HealingPolicy.objects.filter(enabled=True, use_anomaly=True).select_related(
            "organization__plan"
        )
    )
    allowed = {}
    for p in policies:
        if p.organization_id not in allowed:
            allowed[p.organization_id] = entitlements_for(p.organization).has("ml_healing")
    q = Q(pk__in=[])
    for p in policies:
        if not allowed[p.organization_id]:
            continue
        if p.monitor_id:
            q |= Q(pk=p.monitor_id)
        else:
            q |= Q(organization_id=p.organization_id) & _tag_q(p.tag)
    cursor = cache.get(_SCAN_CURSOR_KEY)
    candidates = (
        Monitor.objects.filter(q, paused=False, status=MonitorStatus.UP)
        .exclude(incidents__status__in=OPEN_STATUSES)
        .select_related("organization")
        .order_by("pk")
    )
    batch = list(candidates.filter(pk__gt=cursor)[:limit]) if cursor else []
    if len(batch) < limit:
        batch += list(candidates[: limit - len(batch)])
    seen, flagged = set(), 0
    for monitor in batch:
        if monitor.pk in seen:
            continue
        seen.add(monitor.pk)
        flagged += _scan_one(monitor=monitor, now=now)
    if batch:
        cache.set(_SCAN_CURSOR_KEY, batch[-1].pk, 3600)
    return flagged


def _scan_one(*, monitor: Monitor, now: datetime) -> bool:
    policy = selectors.policy_for(monitor=monitor)
    if policy is None or not policy.use_anomaly:
        return False
    try:
        verdict_anomaly = anomaly_for(monitor=monitor, now=now)
    except Exception:
        logger.exception("anomaly scan failed", extra={"monitor": str(monitor.pk)})
        return False
    if not verdict_anomaly.anomalous:
        return False
    ent = entitlements_for(monitor.organization)
    history = selectors.history_for(incident_id=None, monitor_id=monitor.pk)
    facts = engine.Facts(rule="anomaly_scan", severity="warning", outcome="up")
    verdict = engine.decide(
        facts=facts,
        policy=_policy_view(policy),
        history=history,
        now=now,
        auto_allowed=ent.has("auto_orchestration"),
        anomaly_allowed=True,
        anomaly=verdict_anomaly,
    )
    if verdict.path != "anomaly":
        return False
    # One early suggestion per monitor per cooldown: the scan runs every few minutes.
    recent = HealingAttempt.objects.filter(
        monitor=monitor,
        incident__isnull=True,
        created_at__gte=now - timedelta(minutes=max(policy.cooldown_minutes, 1)),
    ).exists()
    if recent:
        return False
    with transaction.atomic():
        attempt = HealingAttempt.objects.create(
            organization_id=monitor.organization_id,
            incident=None,
            monitor=monitor,
            policy=policy,
            decision=verdict.decision,
            path=verdict.path,
            condition=verdict.condition,
            action_kind=verdict.action_kind,
            explanation=f"Before any incident: {verdict.explanation}",
            inputs={**verdict.inputs, "trigger": "anomaly_scan", "guard": verdict.guard},
            status=_STATUS_FOR[verdict.decision],
            automatic=verdict.acts,
        )
        if attempt.status == AttemptStatus.PENDING:
            _start(attempt, actor=SYSTEM)
    logger.info(
        "healing anomaly found",
        extra={"monitor": str(monitor.pk), "attempt": str(attempt.pk), "kind": verdict.condition},
    )
    return True
