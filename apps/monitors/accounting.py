"""What each raw result meant for an SLA, decided once when its hour is rolled up.

Two facts about a result's moment cannot be read back from a rollup's counts, so the rollup
job records them while it still has the timestamps:

- whether a maintenance window covered the monitor: reports exclude those results by default;
- whether a parent dependency was down or in maintenance: such downtime is reported
  separately, as the dependency's fault.

Windows and dependencies belong to apps.incidents, which stands above monitors: the rollup asks
for an hour's `HourContext` on the `monitors.events.hour_context` seam, and incidents answers
(apps/incidents/accounting.py). This module holds the answer's shape.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Interval = tuple[datetime, datetime]


def union(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _inside(intervals: list[Interval], starts: list[datetime], at: datetime) -> bool:
    i = bisect.bisect_right(starts, at) - 1
    return i >= 0 and at < intervals[i][1]


@dataclass
class HourContext:
    """Maintenance and parent-down intervals of the monitors of one time span."""

    maintenance: dict[Any, list[Interval]] = field(default_factory=dict)
    parent_down: dict[Any, list[Interval]] = field(default_factory=dict)
    _starts: dict[tuple[str, Any], list[datetime]] = field(default_factory=dict)

    def _hit(self, kind: str, table: dict, monitor_id: Any, at: datetime) -> bool:
        intervals = table.get(monitor_id)
        if not intervals:
            return False
        starts = self._starts.get((kind, monitor_id))
        if starts is None:
            starts = self._starts[(kind, monitor_id)] = [s for s, _ in intervals]
        return _inside(intervals, starts, at)

    def in_maintenance(self, monitor_id: Any, at: datetime) -> bool:
        return self._hit("m", self.maintenance, monitor_id, at)

    def parent_is_down(self, monitor_id: Any, at: datetime) -> bool:
        return self._hit("p", self.parent_down, monitor_id, at)

    def maintenance_seconds(self, monitor_id: Any) -> float:
        return sum((e - s).total_seconds() for s, e in self.maintenance.get(monitor_id, ()))
