"""Heartbeat (cron job) monitors: pings in, overdue jobs found by a sweep.

A heartbeat monitor's `next_check_at` (its MonitorSchedule row, lane "heartbeat") is its
deadline: the time by which the next success ping must arrive (last ping + period + grace, or
the next cron fire after the last ping + grace). The sweep is then one indexed range query
over due deadlines, like dispatch.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter
from django.db import transaction
from django.utils import timezone

from apps.monitors.checkers.base import Outcome
from apps.monitors.models import (
    HeartbeatPing,
    Monitor,
    MonitorKind,
    MonitorSchedule,
    MonitorStatus,
    PingKind,
    ScheduleLane,
)
from apps.monitors.schedule import schedule_clear, schedule_set
from apps.monitors.state import (
    FOLDED_FIELDS,
    announce,
    announce_folded,
    apply_outcomes,
    fold_outcomes,
)

MAX_BODY_BYTES = 10 * 1024


@dataclass
class _Observation:
    """What the state machine needs of a result (heartbeats do not write CheckResults)."""

    outcome: str
    checked_at: datetime


def deadline_after(monitor: Monitor, moment: datetime) -> datetime:
    config = monitor.config
    grace = timedelta(seconds=config.get("grace_seconds", 300))
    if config.get("schedule"):
        tz = zoneinfo.ZoneInfo(config.get("timezone", "UTC"))
        fire = croniter(config["schedule"], moment.astimezone(tz)).get_next(datetime)
        return fire.astimezone(UTC) + grace
    return moment + timedelta(seconds=config["period_seconds"]) + grace


PINGS_PER_MINUTE_PER_MONITOR = 120


@dataclass(frozen=True)
class PingAnswer:
    """What a ping came to: unknown token, rate-limited (with seconds to wait), or recorded."""

    found: bool
    retry_after: int | None = None

    @property
    def limited(self) -> bool:
        return self.retry_after is not None


NOT_FOUND = PingAnswer(found=False)
RECORDED = PingAnswer(found=True)


def rate_window(now: datetime) -> tuple[datetime, int]:
    """The fixed one-minute window a ping counts in, and the seconds until it ends."""
    window = now.replace(second=0, microsecond=0)
    return window, 60 - now.second


def clean_body(body: bytes) -> str:
    """The kept part of a ping's body: 10 KB, as text (PostgreSQL text cannot hold NUL)."""
    return body[:MAX_BODY_BYTES].decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def ping_kind(kind: str, exit_code: int | None) -> str:
    if kind == PingKind.EXIT:
        return PingKind.SUCCESS if exit_code == 0 else PingKind.FAIL
    return kind


def ping_record(
    *,
    token: object,
    kind: str,
    exit_code: int | None = None,
    body: bytes = b"",
    remote_addr: str | None = None,
    user_agent: str = "",
    now: datetime | None = None,
    limit: int | None = None,
) -> PingAnswer:
    """Record a ping and move the monitor: success -> up and a new deadline; fail or a non-zero
    exit code -> a failure; start -> remembered, to time the run.

    The reference path: one transaction on the locked monitor row, the state machine in
    Python, the status-change listeners called inside it. apps.monitors.pings runs the common
    case (no status change) as one statement and comes here for everything else.
    """
    now = now or timezone.now()
    if limit is None:
        limit = PINGS_PER_MINUTE_PER_MONITOR
    kind = ping_kind(kind, exit_code)
    window, retry_after = rate_window(now)
    with transaction.atomic():
        locked = (
            Monitor.objects.select_for_update(of=("self",))
            .filter(ping_token=token, kind=MonitorKind.HEARTBEAT)
            .first()
        )
        if locked is None:
            return NOT_FOUND
        if locked.ping_window_at == window:
            if locked.ping_window_count >= limit:
                return PingAnswer(found=True, retry_after=retry_after)
            locked.ping_window_count += 1
        else:
            locked.ping_window_at, locked.ping_window_count = window, 1
        duration_ms = None
        if kind != PingKind.START and locked.last_start_at is not None:
            duration_ms = (now - locked.last_start_at).total_seconds() * 1000
        HeartbeatPing.objects.create(
            monitor=locked,
            organization_id=locked.organization_id,
            kind=kind,
            exit_code=exit_code,
            received_at=now,
            duration_ms=duration_ms,
            remote_addr=remote_addr,
            user_agent=user_agent[:200],
            body=clean_body(body),
        )
        locked.last_ping_at = now
        locked.last_start_at = now if kind == PingKind.START else None
        fields = [
            "last_ping_at",
            "last_start_at",
            "ping_window_at",
            "ping_window_count",
            "updated_at",
        ]
        old = None
        observation = None
        if kind in (PingKind.SUCCESS, PingKind.FAIL) and not locked.paused:
            outcome = Outcome.UP if kind == PingKind.SUCCESS else Outcome.DOWN
            observation = _Observation(outcome, now)
            old = apply_outcomes(locked, [observation])
            fields += FOLDED_FIELDS
        locked.save(update_fields=fields)
        if kind == PingKind.SUCCESS and not locked.paused:
            schedule_set(locked, deadline_after(locked, now))
        if old is not None:
            announce(locked, old, observation)
        elif kind == PingKind.FAIL and locked.status == MonitorStatus.DOWN and observation:
            # Failing again while down: the open incident counts the occurrence. Only this
            # case leaves the one-statement path (apps.monitors.pings) to come here.
            announce_folded([(locked, [observation])])
    return RECORDED


def sweep_overdue(*, now: datetime | None = None, limit: int = 5000) -> int:
    """Mark heartbeats whose deadline passed as failed, once per missed deadline.

    Each deadline acted on is deleted, so the next sweep never reads it again (O(due)); the
    next success ping sets a new one.
    """
    now = now or timezone.now()
    with transaction.atomic():
        due = list(
            MonitorSchedule.objects.filter(lane=ScheduleLane.HEARTBEAT, next_check_at__lte=now)
            .order_by("next_check_at")
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("monitor_id", flat=True)[:limit]
        )
        if not due:
            return 0
        # Monitor rows are locked after schedule rows here but before them on the ping path:
        # skip the ones a ping holds (its deadline is moving anyway) instead of waiting, so the
        # two can never deadlock. Skipped deadlines stay for the next sweep.
        locked = list(
            Monitor.objects.filter(pk__in=due)
            .order_by("pk")
            .select_for_update(skip_locked=True, of=("self",))
        )
        overdue = [m for m in locked if not m.paused and m.status != MonitorStatus.DOWN]
        # A missed deadline is down now, whatever the threshold: fold as many failures as it takes.
        monitors, observations = [], []
        for monitor in overdue:
            for _ in range(monitor.failure_threshold):
                monitors.append(monitor)
                observations.append(_Observation(Outcome.DOWN, now))
        if monitors:
            fold_outcomes(monitors=monitors, results=observations)
        schedule_clear([m.pk for m in locked])
    return len(overdue)
