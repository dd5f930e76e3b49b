"""The incidents side of SLA accounting: which maintenance windows covered a monitor, and when
a parent dependency was down, over the span an hourly rollup covers.

Monitors' rollup job asks on the `monitors.events.hour_context` seam (connected in
healthorch/wiring.py) and records the answer with each hour's counts. Maintenance comes from
the windows as declared (the contract with the customer), not from the `maintenance` status the
sweep sets up to 30 s late; a window edited after the fact changes the hours rolled up again
afterwards, as a late result does.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from croniter import croniter
from django.db.models import Q

from apps.incidents import selectors
from apps.incidents.models import (
    MaintenanceWindow,
    MonitorDependency,
    Recurrence,
    WindowKind,
)
from apps.incidents.windows import cron_of
from apps.monitors.events import HourContext, Interval, union
from apps.monitors.models import Monitor, MonitorStatus

# A cron firing every minute over an hour: bounded so a pathological expression stays cheap.
_MAX_OCCURRENCES = 200


def window_occurrences(window: Any, start: datetime, end: datetime) -> list[Interval]:
    """The parts of a maintenance window's occurrences that fall in [start, end)."""
    lo = max(start, window.starts_at) if window.starts_at else start
    hi = min(end, window.ends_at) if window.ends_at else end
    if lo >= hi:
        return []
    if window.recurrence == Recurrence.ONCE:
        return [(lo, hi)] if window.starts_at and window.ends_at else []
    expression = cron_of(window)
    if not expression or not window.duration_minutes:
        return []
    length = timedelta(minutes=window.duration_minutes)
    tz = zoneinfo.ZoneInfo(window.timezone or "UTC")
    # Local time, so "Sundays 02:00 Europe/Berlin" follows DST. An occurrence that began before
    # `lo` may still be running: start looking one duration earlier (croniter's get_next is
    # strictly after its start, hence the extra second).
    it = croniter(expression, (lo - length - timedelta(seconds=1)).astimezone(tz))
    out = []
    for _ in range(_MAX_OCCURRENCES):
        fire = it.get_next(datetime)
        if fire >= hi:
            break
        s, e = max(fire, lo), min(fire + length, hi)
        if s < e:
            out.append((s, e))
    return out


def hour_context(*, monitor_ids: Iterable[Any], start: datetime, end: datetime) -> HourContext:
    """Maintenance and parent-down intervals for these monitors over [start, end).

    A fixed number of queries whatever the number of monitors: windows of the span, the
    monitors' organizations and tags, their dependencies, and the parents' status log.
    """
    ids = set(monitor_ids)
    ctx = HourContext()
    if not ids:
        return ctx
    monitors = list(Monitor.objects.filter(pk__in=ids).values_list("pk", "organization_id", "tags"))
    org_ids = {org for _, org, _ in monitors}
    windows = list(
        MaintenanceWindow.objects.filter(kind=WindowKind.MAINTENANCE, organization_id__in=org_ids)
        .filter(Q(starts_at__isnull=True) | Q(starts_at__lt=end))
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=start))
        .prefetch_related("monitors")
    )
    if windows:
        spans = [(w, window_occurrences(w, start, end)) for w in windows]
        spans = [(w, occ, {m.pk for m in w.monitors.all()}) for w, occ in spans if occ]
        per_monitor: dict[Any, list[Interval]] = defaultdict(list)
        for pk, org_id, tags in monitors:
            for w, occ, members in spans:
                if w.organization_id != org_id:
                    continue
                if w.all_monitors or pk in members or set(w.tags) & set(tags or []):
                    per_monitor[pk].extend(occ)
        ctx.maintenance = {pk: union(v) for pk, v in per_monitor.items()}

    parents_of: dict[Any, set] = defaultdict(set)
    for child, parent in MonitorDependency.objects.filter(monitor_id__in=ids).values_list(
        "monitor_id", "depends_on_id"
    ):
        parents_of[child].add(parent)
    if parents_of:
        parent_ids = set().union(*parents_of.values())
        bad = {MonitorStatus.DOWN, MonitorStatus.MAINTENANCE}
        state, changes = selectors.status_changes_between(
            monitor_ids=parent_ids, start=start, end=end
        )
        down: dict[Any, list[Interval]] = {}
        for pk in parent_ids:
            intervals, since = [], start if state.get(pk) in bad else None
            for at, new in changes.get(pk, ()):
                if new in bad and since is None:
                    since = at
                elif new not in bad and since is not None:
                    intervals.append((since, at))
                    since = None
            if since is not None:
                intervals.append((since, end))
            down[pk] = intervals
        for child, parents in parents_of.items():
            merged = union(i for p in parents for i in down.get(p, ()))
            if merged:
                ctx.parent_down[child] = merged
    return ctx
