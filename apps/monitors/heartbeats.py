"""Heartbeat (cron job) monitors: pings in, overdue jobs found by a sweep.

A heartbeat monitor's `next_check_at` is its deadline: the time by which the next success
ping must arrive (last ping + period + grace, or the next cron fire after the last ping +
grace). The sweep is then one indexed range query over due deadlines, like dispatch.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from croniter import croniter
from django.db import transaction
from django.utils import timezone

from apps.monitors.checkers.base import Outcome
from apps.monitors.models import HeartbeatPing, Monitor, MonitorKind, MonitorStatus, PingKind
from apps.monitors.state import FOLDED_FIELDS, announce, apply_outcomes, fold_outcomes

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


def ping_record(
    *,
    token: object,
    kind: str,
    exit_code: int | None = None,
    body: bytes = b"",
    remote_addr: str | None = None,
    user_agent: str = "",
    now: datetime | None = None,
) -> HeartbeatPing | None:
    """Record a ping and move the monitor: success -> up and a new deadline; fail or a non-zero
    exit code -> a failure; start -> remembered, to time the run. None for an unknown token.

    Three statements on the hot path (every customer's cron jobs): lock the monitor by its
    token, insert the ping, update the monitor with the folded status.
    """
    now = now or timezone.now()
    if kind == PingKind.EXIT:
        kind = PingKind.SUCCESS if exit_code == 0 else PingKind.FAIL
    with transaction.atomic():
        locked = (
            Monitor.objects.select_for_update(of=("self",))
            .filter(ping_token=token, kind=MonitorKind.HEARTBEAT)
            .first()
        )
        if locked is None:
            return None
        duration_ms = None
        if kind != PingKind.START and locked.last_start_at is not None:
            duration_ms = (now - locked.last_start_at).total_seconds() * 1000
        ping = HeartbeatPing.objects.create(
            monitor=locked,
            organization_id=locked.organization_id,
            kind=kind,
            exit_code=exit_code,
            received_at=now,
            duration_ms=duration_ms,
            remote_addr=remote_addr,
            user_agent=user_agent[:200],
            body=body[:MAX_BODY_BYTES].decode("utf-8", errors="replace"),
        )
        locked.last_ping_at = now
        locked.last_start_at = now if kind == PingKind.START else None
        fields = ["last_ping_at", "last_start_at", "updated_at"]
        if kind == PingKind.SUCCESS:
            locked.next_check_at = deadline_after(locked, now)
            fields.append("next_check_at")
        old = None
        observation = None
        if kind in (PingKind.SUCCESS, PingKind.FAIL) and not locked.paused:
            outcome = Outcome.UP if kind == PingKind.SUCCESS else Outcome.DOWN
            observation = _Observation(outcome, now)
            old = apply_outcomes(locked, [observation])
            fields += FOLDED_FIELDS
        locked.save(update_fields=fields)
        if old is not None:
            announce(locked, old, observation)
    return ping


def sweep_overdue(*, now: datetime | None = None, limit: int = 5000) -> int:
    """Mark heartbeats whose deadline passed as failed, once per missed deadline."""
    now = now or timezone.now()
    with transaction.atomic():
        overdue = list(
            Monitor.objects.filter(kind=MonitorKind.HEARTBEAT, paused=False, next_check_at__lte=now)
            .exclude(status=MonitorStatus.DOWN)
            .order_by("next_check_at")
            .select_for_update(skip_locked=True, of=("self",))[:limit]
        )
        if not overdue:
            return 0
        # A missed deadline is down now, whatever the threshold: fold as many failures as it takes.
        monitors, observations = [], []
        for monitor in overdue:
            for _ in range(monitor.failure_threshold):
                monitors.append(monitor)
                observations.append(_Observation(Outcome.DOWN, now))
        fold_outcomes(monitors=monitors, results=observations)
        Monitor.objects.filter(pk__in=[m.pk for m in overdue]).update(next_check_at=None)
    return len(overdue)
