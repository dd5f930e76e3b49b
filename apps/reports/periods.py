"""Report periods: rolling windows, calendar months and quarters, ISO weeks, any range.

Calendar periods begin at local midnight in the organization's report time zone, so a month
in Europe/Berlin that contains a DST change is 743 or 745 hours long, not 744.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

ROLLING = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}
KINDS = ("monthly", "quarterly", "weekly", "custom", *ROLLING)
MAX_SPAN = timedelta(days=400)


class PeriodError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Period:
    kind: str
    start: datetime
    end: datetime
    label: str

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "label": self.label,
        }


def hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _local_midnight(day: date, tz: zoneinfo.ZoneInfo) -> datetime:
    # In UTC: subtracting two datetimes that share a zoneinfo tzinfo is wall-clock arithmetic
    # in Python, which would make a DST month 744 hours long.
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def month_of(day: date, tz: zoneinfo.ZoneInfo) -> Period:
    first = day.replace(day=1)
    nxt = (first + timedelta(days=32)).replace(day=1)
    return Period(
        "monthly", _local_midnight(first, tz), _local_midnight(nxt, tz), first.strftime("%B %Y")
    )


def quarter_of(day: date, tz: zoneinfo.ZoneInfo) -> Period:
    q = (day.month - 1) // 3
    first = date(day.year, 3 * q + 1, 1)
    nxt = date(day.year + (q == 3), (3 * q + 3) % 12 + 1, 1)
    return Period(
        "quarterly", _local_midnight(first, tz), _local_midnight(nxt, tz), f"Q{q + 1} {day.year}"
    )


def week_of(day: date, tz: zoneinfo.ZoneInfo) -> Period:
    monday = day - timedelta(days=day.weekday())
    iso = monday.isocalendar()
    return Period(
        "weekly",
        _local_midnight(monday, tz),
        _local_midnight(monday + timedelta(days=7), tz),
        f"week {iso.week} of {iso.year}",
    )


def rolling(kind: str, now: datetime) -> Period:
    """The last 24 h / 7 d / 30 d / 90 d up to now, from the start of the hour the window
    begins in (what rollups can resolve): the monitor uptime endpoint's windows."""
    return Period(kind, hour_floor(now - ROLLING[kind]), now, f"last {kind}")


def _moment(raw: str, field: str, tz: zoneinfo.ZoneInfo) -> tuple[datetime, bool]:
    """A date (local midnight) or an ISO date-time; (value, was_a_date)."""
    if len(raw) == 7 and raw[4] == "-":  # 2026-03
        raw = f"{raw}-01"
    day = parse_date(raw) if len(raw) == 10 else None
    if day is not None:
        return _local_midnight(day, tz), True
    try:
        value = parse_datetime(raw)
    except ValueError:
        value = None
    if value is None:
        raise PeriodError(field, "Use a date (YYYY-MM-DD) or an ISO 8601 date-time.")
    if timezone.is_naive(value):
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC), False


def previous(kind: str, now: datetime, tz: zoneinfo.ZoneInfo) -> Period:
    """The last complete month or week before `now` (scheduled reports)."""
    today = now.astimezone(tz).date()
    if kind == "weekly":
        return week_of(today - timedelta(days=7), tz)
    return month_of(today.replace(day=1) - timedelta(days=1), tz)


def parse_period(
    *,
    kind: str | None,
    start: str | None,
    end: str | None,
    tz: zoneinfo.ZoneInfo,
    now: datetime | None = None,
) -> Period:
    """The period a request names. Monthly/quarterly/weekly: the one containing `start`
    (default: the current one, to date). Custom: [start, end), a date `end` is inclusive of
    that whole day. Raises PeriodError(field, message)."""
    now = now or timezone.now()
    kind = kind or "monthly"
    if kind not in KINDS:
        raise PeriodError("period", f"Use one of: {', '.join(KINDS)}.")
    if kind in ROLLING:
        return rolling(kind, now)
    if kind == "custom":
        if not start:
            raise PeriodError("start", "A custom period needs a start.")
        if not end:
            raise PeriodError("end", "A custom period needs an end.")
        lo, _ = _moment(start, "start", tz)
        hi, was_date = _moment(end, "end", tz)
        if was_date:
            hi = _local_midnight(hi.astimezone(tz).date() + timedelta(days=1), tz)
        if hi <= lo:
            raise PeriodError("end", "The end must be after the start.")
        if hi - lo > MAX_SPAN:
            raise PeriodError("end", "A report covers at most 400 days.")
        if lo > now:
            raise PeriodError("start", "The period starts in the future.")
        label = f"{lo.astimezone(tz):%Y-%m-%d %H:%M} to {hi.astimezone(tz):%Y-%m-%d %H:%M}"
        return Period("custom", lo, hi, label)
    anchor = _moment(start, "start", tz)[0].astimezone(tz).date() if start else None
    if anchor is not None and _local_midnight(anchor, tz) > now:
        raise PeriodError("start", "The period starts in the future.")
    day = anchor or now.astimezone(tz).date()
    return {"monthly": month_of, "quarterly": quarter_of, "weekly": week_of}[kind](day, tz)
