"""The outbox: turning incident events into Notification rows, and grouping opened notices.

Rows are written inside the transaction that wrote the incident event (the listener runs
there), so an event and its notifications commit or vanish together; delivery tasks are
enqueued only after commit. If enqueueing fails or a worker dies, the sweep finds the rows.

Grouping: the first opened notice for an (organization, channel) goes out at once. Further
opened notices for that channel within ALERTS_GROUP_WINDOW_SECONDS are held and join one
batch; ALERTS_GROUP_HOLD_SECONDS after the batch began, `group_flush` sends the batch as one
message listing every incident (a batch of one is sent as itself).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from apps.alerts import messages
from apps.alerts.models import (
    Channel,
    Notification,
    NotificationKind,
    NotificationStatus,
)
from apps.core import queueing
from apps.incidents.models import SEVERITY_RANK, Incident, IncidentEvent

logger = logging.getLogger(__name__)


# --- enqueueing -----------------------------------------------------------------------------


def _send(task_name: str, args: list[Any], countdown: float | None = None) -> None:
    """Enqueue a task; a broker hiccup is logged, never raised: the sweep retries the rows."""
    try:
        queueing.task(f"apps.alerts.tasks.{task_name}").apply_async(args, countdown=countdown)
    except Exception:
        logger.exception("could not enqueue", extra={"task": task_name, "task_args": args})


def enqueue_deliveries(ids: Iterable[Any], countdown: float | None = None) -> None:
    ids = [str(i) for i in ids]
    if ids:
        transaction.on_commit(lambda: [_send("deliver_notification", [i], countdown) for i in ids])


_flush_lock = threading.Lock()
_flushes_scheduled: dict[tuple[str, int], float] = {}


def _schedule_flush(channel_id: Any, due: Any) -> None:
    """One flush task per (channel, batch) from this process, however many rows joined it."""
    key = (str(channel_id), int(due.timestamp()))
    now = time.monotonic()
    with _flush_lock:
        for stale in [k for k, at in _flushes_scheduled.items() if now - at > 300]:
            del _flushes_scheduled[stale]
        if key in _flushes_scheduled:
            return
        _flushes_scheduled[key] = now
    delay = max(0.0, (due - timezone.now()).total_seconds())
    transaction.on_commit(lambda: _send("flush_group", [key[0]], delay))


# --- writing rows ---------------------------------------------------------------------------


def notification_rows(
    *,
    incident: Incident,
    event: IncidentEvent | None,
    channels: list[Channel],
    kind: str,
    key_prefix: str,
    step: int | None = None,
    now: Any = None,
) -> list[Notification]:
    """The pending notification per channel for one incident event, not saved yet (write
    them with `notifications_save`). Opened notices may be held for grouping; every other
    kind goes out at once. Inside a transaction the grouping state is read once per channel,
    so building rows for many incidents costs no query per incident."""
    if not channels:
        return []
    now = now or timezone.now()
    payload = messages.incident_payload(incident=incident, kind=kind, event=event, step=step)
    holds = _holds(channels=channels, now=now) if kind == NotificationKind.OPENED else {}
    return [
        Notification(
            organization_id=incident.organization_id,
            channel=channel,
            incident=incident,
            event=event,
            kind=kind,
            severity=incident.severity,
            idempotency_key=f"{key_prefix}:{channel.pk}",
            next_attempt_at=holds.get(channel.pk, now),
            hold_until=holds.get(channel.pk),
            payload=payload,
            max_attempts=settings.ALERTS_MAX_ATTEMPTS,
        )
        for channel in channels
    ]


def notifications_save(rows: list[Notification]) -> list[Notification]:
    """Insert the rows in one statement (idempotent per key) and enqueue them after commit:
    the ones held for grouping as one flush per (channel, batch), the others each."""
    if not rows:
        return []
    # ignore_conflicts: the same event seen twice (a re-run listener) writes nothing new, and
    # the unique key is what makes that safe, not a read beforehand.
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    enqueue_deliveries(r.pk for r in rows if r.hold_until is None)
    for row in rows:
        if row.hold_until is not None:
            _schedule_flush(row.channel_id, row.hold_until)
    return rows


def notifications_write(**rows: Any) -> list[Notification]:
    """Write one pending notification per channel (idempotent per key) and enqueue them:
    `notification_rows(**rows)`, saved."""
    return notifications_save(notification_rows(**rows))


def transaction_memo(name: str) -> dict[Any, Any] | None:
    """A dict that lives as long as the current transaction (None outside one).

    Tied to the transaction by identity: Django replaces `connection.run_on_commit` with a
    new list at every commit and rollback (and savepoint rollback); the innermost atomic
    block object and the open savepoint ids (unique per entry, even when one decorated
    function's atomic block is re-entered) are compared too. So a memo never outlives the
    block it was made in. Used so that a burst
    of incidents opened in one transaction (the check fold) costs one lookup per
    (organization, channel), not one per incident.
    """
    conn = transaction.get_connection()
    if not conn.in_atomic_block:
        return None
    owner = (conn.run_on_commit, conn.atomic_blocks[-1], tuple(conn.savepoint_ids))
    memos = getattr(_memos, "value", None)
    if (
        memos is None
        or memos[0][0] is not owner[0]
        or memos[0][1] is not owner[1]
        or memos[0][2] != owner[2]
    ):
        memos = (owner, {})
        _memos.value = memos
    return memos[1].setdefault(name, {})


_memos = threading.local()


def _holds(*, channels: list[Channel], now: Any) -> dict[Any, Any]:
    """{channel id: hold until} for the channels whose opened notices must wait.

    One query for the channels not seen yet in this transaction: those with an opened notice
    inside the window, each with the end of the batch already waiting there (if any). A new
    notice joins that batch, so a burst makes one batch, not one per second of the burst.
    """
    window = settings.ALERTS_GROUP_WINDOW_SECONDS
    if window <= 0:
        return {}
    fresh = now + timedelta(seconds=settings.ALERTS_GROUP_HOLD_SECONDS)
    memo = transaction_memo("holds")
    known = {c.pk for c in channels if memo is not None and c.pk in memo}
    holds: dict[Any, Any] = {}
    for cid in known:
        # None: this transaction already sent one notice at once; a later one starts a batch.
        until = memo[cid]
        holds[cid] = until if until is not None and until > now else fresh
    unknown = [c.pk for c in channels if c.pk not in known]
    if unknown:
        recent = (
            Notification.objects.filter(
                channel_id__in=unknown,
                kind=NotificationKind.OPENED,
                created_at__gte=now - timedelta(seconds=window),
            )
            .order_by()  # no Meta ordering in the GROUP BY
            .values("channel_id")
            .annotate(
                until=Max(
                    "hold_until", filter=Q(status=NotificationStatus.PENDING, hold_until__gt=now)
                )
            )
            .values_list("channel_id", "until")
        )
        holds.update({cid: until or fresh for cid, until in recent})
    if memo is not None:
        for c in channels:
            memo[c.pk] = holds.get(c.pk)
    return holds


# --- grouping -------------------------------------------------------------------------------


def group_flush(*, channel_id: Any, now: Any = None) -> Notification | None:
    """Send the held opened notices of one channel whose hold is over: one message for all.

    Two flushes of the same channel (its task and the sweep) split nothing and send nothing
    twice: each first takes the channel's row (FOR UPDATE SKIP LOCKED), and the one that finds
    it taken returns at once, leaving the batch to the flush that holds it. (Locking the held
    rows alone was not enough: two SKIP LOCKED scans running together each took part of the
    batch, and it went out as two messages.) Returns the notification that will carry them
    (the group, or the single row); None when there was nothing to send here.
    """
    now = now or timezone.now()
    with transaction.atomic():
        mine = (
            Channel.objects.select_for_update(skip_locked=True)
            .filter(pk=channel_id)
            .values_list("pk", flat=True)
            .first()
        )
        if mine is None:  # another flush of this channel is under way (or it is gone)
            return None
        members = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(
                channel_id=channel_id,
                status=NotificationStatus.PENDING,
                hold_until__isnull=False,
                hold_until__lte=now,
            )
            .order_by("created_at", "id")[:5000]
        )
        if not members:
            return None
        ids = [m.pk for m in members]
        if len(members) == 1:
            Notification.objects.filter(pk__in=ids).update(hold_until=None, next_attempt_at=now)
            enqueue_deliveries(ids)
            return members[0]
        first = members[0]
        channel = Channel.objects.select_related("organization").get(pk=channel_id)
        earlier = _sent_alone_in_window(channel_id=channel_id, before=first.created_at)
        group = Notification.objects.create(
            organization_id=first.organization_id,
            channel_id=channel_id,
            incident_id=first.incident_id,
            kind=NotificationKind.OPENED,
            severity=max((m.severity for m in members), key=SEVERITY_RANK.__getitem__),
            idempotency_key=f"group:{first.pk}",
            is_group=True,
            next_attempt_at=now,
            payload=messages.group_payload(
                org_name=channel.organization.name, members=members, earlier=earlier
            ),
            max_attempts=settings.ALERTS_MAX_ATTEMPTS,
        )
        Notification.objects.filter(pk__in=ids).update(
            status=NotificationStatus.GROUPED, group=group, hold_until=None
        )
        enqueue_deliveries([group.pk])
    logger.info(
        "notifications grouped",
        extra={"channel": str(channel_id), "members": len(members), "group": str(group.pk)},
    )
    return group


def _sent_alone_in_window(*, channel_id: Any, before: Any) -> list[dict[str, Any]]:
    window = timedelta(seconds=settings.ALERTS_GROUP_WINDOW_SECONDS)
    rows = Notification.objects.filter(
        channel_id=channel_id,
        kind=NotificationKind.OPENED,
        is_group=False,
        group__isnull=True,
        hold_until__isnull=True,
        created_at__gte=before - window,
        created_at__lte=before,
    ).values_list("payload", flat=True)[:20]
    return [{"incident_id": p.get("incident_id"), "title": p.get("title")} for p in rows]


def held_channels_due(*, now: Any, limit: int = 200) -> list[Any]:
    return list(
        Notification.objects.filter(status=NotificationStatus.PENDING, hold_until__lte=now)
        .order_by()
        .values_list("channel_id", flat=True)
        .distinct()[:limit]
    )
