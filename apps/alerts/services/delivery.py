"""Sending one notification: claim, meter, send, record, retry or give up.

Exactly-once per key, as far as healthorch can make it: a delivery starts only after a
compare-and-set moves its row from pending/failed to `sending` (one winner however many
tasks run for it), and a `sent` row is never claimed again. The one gap is a worker killed
between the receiver accepting and the row being marked sent: after the lease the sweep sends
again, so every message carries its `idempotency_key` for the receiver to drop a duplicate.
"""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.alerts import messages
from apps.alerts.channels import DeliveryError, transport_for
from apps.alerts.models import (
    CLAIMABLE,
    Channel,
    ChannelKind,
    Notification,
    NotificationAttempt,
    NotificationKind,
    NotificationStatus,
)
from apps.alerts.services.channel_state import channel_disable, channel_full_config
from apps.alerts.services.outbox import enqueue_deliveries, group_flush, held_channels_due
from apps.audit import services as audit
from apps.core import crypto
from apps.core.errors import UpgradeRequired
from apps.incidents import events
from apps.incidents.models import EventKind, Incident, IncidentEvent, Severity
from apps.plans.models import Limit, UsageMetric
from apps.plans.services import reserve, usage_add
from healthorch.metrics import notifier_notifications_sent_total

logger = logging.getLogger(__name__)

# Give a re-enqueued row's own task this long to run before the sweep nudges it again.
SWEEP_GRACE_SECONDS = 10


def backoff_seconds(attempt: int, retry_after: float | None = None) -> float:
    """Wait after failed attempt `attempt` (1-based): base * 2**(n-1), +-20% jitter so a
    receiver that came back is not hit by every queued retry in the same second. A
    receiver's Retry-After is honoured when longer (capped at an hour)."""
    base = settings.ALERTS_RETRY_BASE_SECONDS * 2 ** (attempt - 1)
    delay = base * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not a secret
    if retry_after:
        delay = max(delay, min(retry_after, 3600.0))
    return delay


def _claim(notification_id: Any, now: Any) -> bool:
    # The race this prevents: the task delivered twice (acks_late redelivery, the sweep's
    # nudge, an operator's retry) running at once; exactly one UPDATE matches.
    return bool(
        Notification.objects.filter(
            pk=notification_id,
            status__in=CLAIMABLE,
            hold_until__isnull=True,
            next_attempt_at__lte=now,
        ).update(status=NotificationStatus.SENDING, attempts=F("attempts") + 1, claimed_at=now)
    )


def notification_deliver(*, notification_id: Any) -> str | None:
    """Try to deliver one notification now; returns its new status, or None if it was not
    ours to send (already sent, being sent, held for grouping, not yet due)."""
    now = timezone.now()
    if not _claim(notification_id, now):
        return None
    n = Notification.objects.select_related("channel", "organization").get(pk=notification_id)
    channel = n.channel
    if not channel.enabled:
        reason = f"channel disabled: {channel.disabled_reason or 'by a user'}"
        return _finish(n, NotificationStatus.SUPPRESSED, error=reason, outcome="suppressed")
    if not n.metered and n.kind != NotificationKind.TEST and not _meter(n):
        return _finish(
            n,
            NotificationStatus.SUPPRESSED_QUOTA,
            error="monthly notification quota reached",
            outcome="suppressed_quota",
        )
    return _send(n, now)


def _meter(n: Notification) -> bool:
    """Count the notification against the monthly cap; False if it must be suppressed.

    Over the cap, critical notices still go out by email (counted, so usage shows the
    overrun); everything else is suppressed.
    """
    org = n.organization
    try:
        reserve(org=org, limit=Limit.NOTIFICATIONS_PER_MONTH)
    except UpgradeRequired:
        if not (n.severity == Severity.CRITICAL and n.channel.kind == ChannelKind.EMAIL):
            return False
        usage_add(org=org, metric=UsageMetric.NOTIFICATIONS_SENT)
    Notification.objects.filter(pk=n.pk).update(metered=True)
    n.metered = True
    return True


def _send(n: Notification, now: Any) -> str:
    started = time.monotonic()
    error: DeliveryError | None = None
    details: dict[str, Any] = {}
    try:
        transport = transport_for(n.channel.kind, channel_full_config(n.channel))
        details = transport.notify(messages.message_for(n)) or {}
    except DeliveryError as exc:
        error = exc
    except crypto.SecretUnavailable as exc:
        # The server lacks the channel's key (a restore without its keys): an operator's fault,
        # not the tenant's, so the channel stays enabled and the delivery is retried; the
        # attempt row carries the fix (the key id and the setting).
        logger.error(
            "channel secret cannot be decrypted",
            extra={"notification": str(n.pk), "key_id": exc.key_id, "setting": exc.setting},
        )
        error = DeliveryError(exc.detail, permanent=False)
    except Exception as exc:  # a transport bug must not leave the row in `sending` forever
        logger.exception("transport crashed", extra={"notification": str(n.pk)})
        error = DeliveryError(f"internal error: {type(exc).__name__}", permanent=False)
    elapsed = int((time.monotonic() - started) * 1000)
    with transaction.atomic():
        NotificationAttempt.objects.create(
            notification=n,
            number=n.attempts,
            started_at=now,
            duration_ms=elapsed,
            ok=error is None,
            permanent=bool(error and error.permanent),
            error=str(error) if error else "",
            details=_jsonable(details),
        )
        if error is None:
            return _finish(n, NotificationStatus.SENT, outcome="sent")
        if error.permanent:
            if n.kind != NotificationKind.TEST:
                channel_disable(channel_id=n.channel_id, reason=str(error))
            return _finish(n, NotificationStatus.DEAD, error=str(error), outcome="dead")
        if n.attempts >= n.max_attempts or n.kind == NotificationKind.TEST:
            return _finish(n, NotificationStatus.DEAD, error=str(error), outcome="dead")
        wait = backoff_seconds(n.attempts, error.retry_after)
        Notification.objects.filter(pk=n.pk, status=NotificationStatus.SENDING).update(
            status=NotificationStatus.FAILED,
            next_attempt_at=timezone.now() + timedelta(seconds=wait),
            last_error=str(error),
        )
        enqueue_deliveries([n.pk], countdown=wait)
    notifier_notifications_sent_total.labels(channel=n.channel.kind, outcome="failed").inc()
    logger.info(
        "notification failed, will retry",
        extra={"notification": str(n.pk), "attempt": n.attempts, "retry_in": round(wait, 1)},
    )
    n.status = NotificationStatus.FAILED
    return n.status


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, int | float | str | bool | list) else str(v)
        for k, v in details.items()
    }


def _finish(n: Notification, status: str, *, outcome: str, error: str = "") -> str:
    """Record a final outcome (sent, dead, suppressed...) and its timeline events."""
    now = timezone.now()
    with transaction.atomic():
        changes: dict[str, Any] = {"status": status, "last_error": error}
        if status == NotificationStatus.SENT:
            changes["sent_at"] = now
        Notification.objects.filter(pk=n.pk).update(**changes)
        if status == NotificationStatus.DEAD and n.metered:
            # A notification nobody received does not use up the month's allowance.
            usage_add(org=n.organization, metric=UsageMetric.NOTIFICATIONS_SENT, amount=-1)
            Notification.objects.filter(pk=n.pk).update(metered=False)
        if n.kind != NotificationKind.TEST:
            _record_notified(n, outcome=outcome, error=error, now=now)
    notifier_notifications_sent_total.labels(channel=n.channel.kind, outcome=outcome).inc()
    log = logger.info if status == NotificationStatus.SENT else logger.warning
    log(
        f"notification {outcome}",
        extra={
            "notification": str(n.pk),
            "channel": str(n.channel_id),
            "kind": n.channel.kind,
            "attempts": n.attempts,
            "error": error,
        },
    )
    n.status = status
    return status


def _record_notified(n: Notification, *, outcome: str, error: str, now: Any) -> None:
    """A `notified` event on each incident the notification was about (a group: every
    member's incident), published with notify False."""
    if n.is_group:
        incident_ids = list(
            Notification.objects.filter(group=n).values_list("incident_id", flat=True)
        )
    else:
        incident_ids = [n.incident_id] if n.incident_id else []
    if not incident_ids:
        return
    data = {
        "channel": n.channel.name,
        "channel_id": str(n.channel_id),
        "channel_kind": n.channel.kind,
        "outcome": outcome,
        "notification": str(n.pk),
        "kind": n.kind,
        "grouped": n.is_group,
        "notify": False,
    }
    if error:
        data["error"] = error[:500]
    rows = IncidentEvent.objects.bulk_create(
        IncidentEvent(
            incident_id=iid,
            organization_id=n.organization_id,
            kind=EventKind.NOTIFIED,
            at=now,
            data=data,
        )
        for iid in incident_ids
    )
    incidents = Incident.objects.in_bulk(incident_ids)
    for row in rows:
        events.publish(incident=incidents[row.incident_id], event=row)


# --- operators ------------------------------------------------------------------------------


def notification_retry(*, notification: Notification) -> bool:
    """Give a dead notification a fresh attempt budget and send it again (admin action).

    Compare-and-set from `dead`, so clicking twice queues one retry. True if queued.
    """
    now = timezone.now()
    with transaction.atomic():
        done = Notification.objects.filter(
            pk=notification.pk, status=NotificationStatus.DEAD
        ).update(
            status=NotificationStatus.PENDING,
            next_attempt_at=now,
            max_attempts=F("attempts") + settings.ALERTS_MAX_ATTEMPTS,
            last_error="",
        )
        if done:
            audit.record(
                org=notification.organization_id,
                action="notification.retried",
                target=notification,
                object_repr=f"{notification.kind} via {notification.channel_id}",
                before={"status": NotificationStatus.DEAD},
                after={"status": NotificationStatus.PENDING},
            )
            enqueue_deliveries([notification.pk])
    return bool(done)


# --- test messages --------------------------------------------------------------------------


def deliver_test(*, channel: Channel) -> Notification:
    """Write a test notification for the channel and send it now, in this process."""
    now = timezone.now()
    n = Notification.objects.create(
        organization_id=channel.organization_id,
        channel=channel,
        kind=NotificationKind.TEST,
        severity=Severity.INFO,
        idempotency_key=f"test:{channel.pk}:{now.timestamp():.6f}",
        next_attempt_at=now,
        payload=messages.test_payload(channel.name),
        max_attempts=1,
    )
    notification_deliver(notification_id=n.pk)
    n.refresh_from_db()
    return n


# --- the sweep ------------------------------------------------------------------------------


def notifications_sweep(*, now: Any = None, limit: int = 500) -> dict[str, int]:
    """Recover what a lost task or a dead worker left behind. Bounded per call.

    - `sending` past the lease: the worker died mid-send; record the lost attempt and retry
      (or give up if that was the last attempt);
    - pending/failed and due for a while: their task was lost; nudge them again (the claim
      makes a duplicate nudge harmless);
    - held opened notices past their hold: flush their channel's batch.
    """
    now = now or timezone.now()
    lease = timedelta(seconds=settings.ALERTS_SENDING_LEASE_SECONDS)
    lost = 0
    for pk, claimed_at, attempts, max_attempts in Notification.objects.filter(
        status=NotificationStatus.SENDING, claimed_at__lt=now - lease
    ).values_list("pk", "claimed_at", "attempts", "max_attempts")[:limit]:
        lost += _recover_lost(pk, claimed_at, attempts, max_attempts, now)
    orphans = list(
        Notification.objects.filter(
            status__in=CLAIMABLE,
            hold_until__isnull=True,
            next_attempt_at__lte=now - timedelta(seconds=SWEEP_GRACE_SECONDS),
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    with transaction.atomic():
        enqueue_deliveries(orphans)
    flushed = 0
    for channel_id in held_channels_due(now=now - timedelta(seconds=SWEEP_GRACE_SECONDS)):
        flushed += group_flush(channel_id=channel_id, now=now) is not None
    if lost or orphans or flushed:
        logger.info(
            "notification sweep",
            extra={"lost": lost, "nudged": len(orphans), "flushed": flushed},
        )
    return {"lost": lost, "nudged": len(orphans), "flushed": flushed}


def _recover_lost(pk: Any, claimed_at: Any, attempts: int, max_attempts: int, now: Any) -> int:
    with transaction.atomic():
        # Compare-and-set on the claim time: a worker that finishes right now wins or loses
        # cleanly, never both.
        final = attempts >= max_attempts
        done = Notification.objects.filter(
            Q(pk=pk) & Q(status=NotificationStatus.SENDING) & Q(claimed_at=claimed_at)
        ).update(
            status=NotificationStatus.FAILED,
            next_attempt_at=now,
            last_error="worker stopped mid-send",
            # The lost attempt may not have reached the receiver: one more try even if it was
            # the last, since the message carries its idempotency key.
            max_attempts=max(max_attempts, attempts + 1) if final else max_attempts,
        )
        if not done:
            return 0
        NotificationAttempt.objects.get_or_create(
            notification_id=pk,
            number=attempts,
            defaults={"started_at": claimed_at, "error": "worker stopped mid-send (lease expired)"},
        )
        enqueue_deliveries([pk])
    return 1
