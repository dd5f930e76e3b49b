"""Writes to MonitorSchedule: what is pending for a monitor, and when.

A row exists only while something is pending, so "nothing pending" (paused, a heartbeat before
its first ping) is simply no row and costs the dispatcher's index nothing. The dispatcher
(engine.claim_due), the ping path (apps.monitors.pings) and the heartbeat sweep write their
own rows in their own statements; everything else goes through here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from apps.monitors.models import ACTIVE_KINDS, Monitor, MonitorKind, MonitorSchedule, ScheduleLane


def lane_of(kind: str) -> str | None:
    if kind in ACTIVE_KINDS:
        return ScheduleLane.CHECK
    if kind == MonitorKind.HEARTBEAT:
        return ScheduleLane.HEARTBEAT
    return None  # metric monitors are evaluated on ingest, never scheduled


def schedule_set(monitor: Monitor, at: datetime | None) -> None:
    """Make `at` the monitor's next check (or deadline); None clears it. One statement."""
    lane = lane_of(monitor.kind)
    if at is None or lane is None:
        schedule_clear([monitor.pk])
        schedule_forget(monitor)
        return
    row = MonitorSchedule(
        monitor=monitor,
        lane=lane,
        next_check_at=at,
        interval_seconds=monitor.interval_seconds,
        regions=monitor.regions,
    )
    MonitorSchedule.objects.bulk_create(
        [row],
        update_conflicts=True,
        unique_fields=["monitor"],
        update_fields=["lane", "next_check_at", *MonitorSchedule.SYNCED_FIELDS],
    )
    Monitor.schedule.related.set_cached_value(monitor, row)


def schedule_clear(monitor_ids: Iterable[object]) -> int:
    """Nothing is pending for these monitors any more (paused, or a deadline acted on)."""
    ids = list(monitor_ids)
    if not ids:
        return 0
    deleted, _ = MonitorSchedule.objects.filter(monitor_id__in=ids).delete()
    return deleted


def schedule_forget(monitor: Monitor) -> None:
    """Remember on the instance that nothing is pending (saves reading the row again)."""
    Monitor.schedule.related.set_cached_value(monitor, None)
