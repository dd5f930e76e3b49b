"""Builders for report tests: monitors, raw results rolled up like the beat job does, and
rollup rows written directly where only the engine's arithmetic is under test."""

from __future__ import annotations

from datetime import datetime, timedelta

from apps.incidents.models import StatusChange
from apps.monitors import rollups, services
from apps.monitors.models import CheckResult, Granularity, Monitor, ResultRollup


def make_monitor(org, name: str = "api", *, interval: int = 60, tags=None, **extra) -> Monitor:
    monitor = services.monitor_create(
        org=org,
        data={
            "name": name,
            "kind": "http",
            "config": {"url": "http://127.0.0.1:9/"},
            "tags": tags or [],
        },
    )
    Monitor.objects.filter(pk=monitor.pk).update(interval_seconds=interval, **extra)
    monitor.refresh_from_db()
    return monitor


def results(monitor: Monitor, start: datetime, outcomes, *, step: timedelta = timedelta(minutes=1)):
    """One result per step from `start`; outcomes are outcome strings or (outcome, ms, error)."""
    rows = []
    for i, item in enumerate(outcomes):
        if isinstance(item, str):
            item = (item, 50.0 if item in ("up", "degraded") else None)
        outcome, ms, error = (*item, "")[:3]
        rows.append(
            CheckResult(
                monitor=monitor,
                organization_id=monitor.organization_id,
                checked_at=start + i * step,
                outcome=outcome,
                response_time_ms=ms,
                error_class=error,
                error_message=f"{error} happened" if error else "",
            )
        )
    CheckResult.objects.bulk_create(rows)


def roll(start: datetime, end: datetime) -> None:
    """Roll up every hour in [start, end), then the whole UTC days inside it."""
    hour = start.replace(minute=0, second=0, microsecond=0)
    while hour < end:
        rollups.rollup_hour(hour)
        hour += timedelta(hours=1)
    day = (start + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    while day + timedelta(days=1) <= end:
        rollups.rollup_day(day)
        day += timedelta(days=1)


def hour_rollups(monitor: Monitor, hours: dict[datetime, dict]) -> None:
    """Hourly rollup rows as given: {hour: {"up": n, "down": n, ...}}."""
    ResultRollup.objects.bulk_create(
        [
            ResultRollup(
                monitor=monitor,
                organization_id=monitor.organization_id,
                granularity=Granularity.HOUR,
                bucket_start=hour,
                total=sum(
                    v for k, v in counts.items() if k in ("up", "degraded", "down", "inconclusive")
                ),
                **counts,
            )
            for hour, counts in hours.items()
        ]
    )


def status_change(monitor: Monitor, at: datetime, old: str, new: str) -> None:
    StatusChange.objects.create(
        monitor=monitor, organization_id=monitor.organization_id, old=old, new=new, at=at
    )
