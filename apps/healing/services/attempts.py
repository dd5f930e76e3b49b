"""Acting: run a pending attempt's action once, verify the monitor afterwards, escalate when
healing fails, and the sweep that catches lost tasks."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.core import crypto
from apps.healing.actions import ActionError, ActionRequest, action_for
from apps.healing.models import (
    AttemptStatus,
    HealingAttempt,
    Verification,
)
from apps.healing.services import queue
from apps.healing.services.decisions import timeline_record
from apps.healing.services.policies import policy_secrets
from apps.monitors import services as monitor_services
from apps.monitors.models import ACTIVE_KINDS, MonitorStatus

logger = logging.getLogger(__name__)

# A `running` attempt older than this belongs to a worker that died mid-action (an action's
# own timeout is at most 30 s).
RUNNING_LEASE_SECONDS = 120
# A `pending` attempt whose task never arrived (broker lost it) is re-sent after this long.
PENDING_RESEND_SECONDS = 60

# --- acting ---------------------------------------------------------------------------------


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
    except crypto.SecretUnavailable as exc:  # the server lacks the key: say which, not "crashed"
        logger.error(
            "healing action secret cannot be decrypted",
            extra={"attempt": str(attempt_id), "key_id": exc.key_id, "setting": exc.setting},
        )
        error = exc.detail
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
        timeline_record(
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
            transaction.on_commit(lambda: queue.send("verify", pk, countdown=delay))
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
        timeline_record(
            attempt,
            "escalated",
            at=timezone.now(),
            note=f"Healing did not fix it; escalating now ({'next step sent' if ran else 'nothing left to escalate'}).",
            escalation_ran=ran,
        )


def attempt_verify(*, attempt_id: Any, now: datetime | None = None) -> HealingAttempt | None:
    """Re-check the monitor after an action and record whether it recovered. Idempotent."""
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
        results = monitor_services.monitors_check_now(monitor_ids=[monitor.pk])
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
        timeline_record(
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
        queue.send("execute", str(pk))
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
            timeline_record(
                attempt, "failed", at=now, note="The worker running the action was lost."
            )
        _escalate(attempt, reason="healing worker lost")
        lost += 1
    return {"verified": verified, "resent": resent, "lost": lost}
