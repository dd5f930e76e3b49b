"""Acting early: the anomaly scan over monitors that are still up."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from apps.audit.services import SYSTEM
from apps.healing import engine, selectors
from apps.healing.models import (
    AttemptStatus,
    HealingAttempt,
    HealingPolicy,
)
from apps.healing.services.decisions import (
    STATUS_FOR_DECISION,
    anomaly_for,
    attempt_start,
    policy_view,
)
from apps.monitors.models import Monitor
from apps.plans.selectors import entitlements_for

logger = logging.getLogger(__name__)

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
        policy=policy_view(policy),
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
            status=STATUS_FOR_DECISION[verdict.decision],
            automatic=verdict.acts,
        )
        if attempt.status == AttemptStatus.PENDING:
            attempt_start(attempt, actor=SYSTEM)
    logger.info(
        "healing anomaly found",
        extra={"monitor": str(monitor.pk), "attempt": str(attempt.pk), "kind": verdict.condition},
    )
    return True
