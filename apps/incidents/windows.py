"""When a maintenance window or silence is in force, and what it covers. Pure functions of a
window row (with its monitor ids prefetched) and a moment; no queries."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta

from croniter import croniter

from apps.incidents.models import MaintenanceWindow, Recurrence


def weekly_cron(weekdays: list[int], hour: int, minute: int) -> str:
    """Weekdays numbered from Monday = 0 (Python's), as a cron expression (Sunday = 0)."""
    days = ",".join(str((d + 1) % 7) for d in sorted(set(weekdays)))
    return f"{minute} {hour} * * {days}"


def cron_of(window: MaintenanceWindow) -> str | None:
    if window.recurrence == Recurrence.CRON:
        return window.cron
    if window.recurrence == Recurrence.WEEKLY and window.start_time is not None:
        return weekly_cron(window.weekdays, window.start_time.hour, window.start_time.minute)
    return None


def occurrence_at(window: MaintenanceWindow, at: datetime) -> tuple[datetime, datetime] | None:
    """The (start, end) of the occurrence in force at `at`, or None."""
    if window.recurrence == Recurrence.ONCE:
        if window.starts_at and window.ends_at and window.starts_at <= at < window.ends_at:
            return window.starts_at, window.ends_at
        return None
    if window.starts_at and at < window.starts_at:
        return None
    if window.ends_at and at >= window.ends_at:
        return None
    expression = cron_of(window)
    if not expression or not window.duration_minutes:
        return None
    tz = zoneinfo.ZoneInfo(window.timezone or "UTC")
    # croniter's get_prev is strictly before its start: start a second later so an occurrence
    # beginning exactly now counts. Local time, so "every Sunday 02:00" follows DST.
    start = croniter(expression, (at + timedelta(seconds=1)).astimezone(tz)).get_prev(datetime)
    end = start + timedelta(minutes=window.duration_minutes)
    if start <= at < end:
        return start, end
    return None


def is_active(window: MaintenanceWindow, at: datetime) -> bool:
    return occurrence_at(window, at) is not None


def covers(window: MaintenanceWindow, monitor) -> bool:
    """Whether the window applies to the monitor (needs `monitors` prefetched)."""
    if window.organization_id != monitor.organization_id:
        return False
    if window.all_monitors:
        return True
    if monitor.pk in {m.pk for m in window.monitors.all()}:
        return True
    return bool(set(window.tags) & set(monitor.tags or []))


def next_start(window: MaintenanceWindow, after: datetime) -> datetime | None:
    """When the next occurrence begins (for display)."""
    if window.recurrence == Recurrence.ONCE:
        return window.starts_at if window.starts_at and window.starts_at > after else None
    expression = cron_of(window)
    if not expression:
        return None
    tz = zoneinfo.ZoneInfo(window.timezone or "UTC")
    fire = croniter(expression, max(after, window.starts_at or after).astimezone(tz)).get_next(
        datetime
    )
    if window.ends_at and fire >= window.ends_at:
        return None
    return fire
