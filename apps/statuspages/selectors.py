"""Reads for status pages: the whole page in a fixed number of queries.

`page_snapshot` costs the same number of queries for 1 or 500 monitors in any number of
sections (tested): sections with their monitors (2), the 90 days of daily rollups and today's
hourly rollups of all the page's monitors (2), maintenance windows with their monitors (2),
incidents with their updates and postmortems (2). Bars come from rollups, never raw results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import CharField, Prefetch, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.html import escape

from apps.incidents import selectors as window_math
from apps.incidents.models import OPEN_STATUSES, Incident, MaintenanceWindow, WindowKind
from apps.monitors.models import Granularity, MonitorStatus, ResultRollup
from apps.statuspages import bars as bar_math
from apps.statuspages.models import (
    Badge,
    IncidentUpdate,
    StatusPage,
    StatusPageMonitor,
    StatusPageSection,
    Subscriber,
    UpdateStatus,
)
from apps.tenants.models import Organization

DAYS = 90
MAX_INCIDENTS = 50
UPCOMING_MAINTENANCE = timedelta(days=7)

# Overall page status, worst first wins.
OVERALL = {
    "major": "Major outage",
    "partial": "Partial outage",
    "degraded": "Degraded performance",
    "maintenance": "Under maintenance",
    "operational": "All systems operational",
}
_RANK = {name: i for i, name in enumerate(reversed(OVERALL))}


@dataclass
class MonitorRow:
    id: Any
    name: str
    status: str
    bars: bar_math.DayBars
    uptime: float | None
    svg: str = ""

    @property
    def uptime_label(self) -> str:
        return bar_math.format_pct(self.uptime)


@dataclass
class SectionView:
    name: str
    rows: list[MonitorRow]


@dataclass
class IncidentView:
    incident: Incident
    public_status: str
    updates: list[IncidentUpdate]
    postmortem: Any = None
    title: str = ""

    @property
    def is_active(self) -> bool:
        return self.public_status != UpdateStatus.RESOLVED


@dataclass
class MaintenanceView:
    name: str
    starts_at: datetime | None
    ends_at: datetime | None
    active: bool


@dataclass
class PageSnapshot:
    page: StatusPage
    overall: str
    sections: list[SectionView]
    active_incidents: list[IncidentView]
    history: list[IncidentView]
    maintenance: list[MaintenanceView]
    days: list[date]
    generated_at: datetime
    monitor_count: int = field(default=0)

    @property
    def overall_label(self) -> str:
        return OVERALL[self.overall]


def page_by_slug(*, slug: str) -> StatusPage | None:
    """A published page for visitors (with its organization), or None."""
    return (
        StatusPage.objects.select_related("organization").filter(slug=slug, published=True).first()
    )


def page_list(*, org: Organization) -> QuerySet[StatusPage]:
    return StatusPage.objects.for_org(org)


def section_list(*, org: Organization) -> QuerySet[StatusPageSection]:
    return (
        StatusPageSection.objects.for_org(org)
        .select_related("page")
        .prefetch_related(
            Prefetch("items", queryset=StatusPageMonitor.objects.order_by("position"))
        )
    )


def badge_list(*, org: Organization) -> QuerySet[Badge]:
    return Badge.objects.for_org(org).select_related("monitor")


def subscriber_list(*, org: Organization) -> QuerySet[Subscriber]:
    return Subscriber.objects.for_org(org).select_related("page")


def public_state(incident: Incident, updates: list[IncidentUpdate]) -> str:
    """What the page says about an incident: the latest update's status when a member posted
    one (communication leads), else the incident's own state."""
    if updates:
        return updates[0].status
    return UpdateStatus.RESOLVED if not incident.is_open else UpdateStatus.INVESTIGATING


def public_title(incident: Incident, names: dict[Any, tuple[str, str]]) -> str:
    """The incident's title with the monitor's internal name replaced by the name the page
    shows (rules write titles like "billing-db-primary is down"; the page may call it
    "Payments")."""
    internal, public = names.get(incident.monitor_id, ("", ""))
    if internal and public and internal != public:
        return incident.title.replace(internal, public)
    return incident.title


def _day_bars(monitor_ids: list[Any], today: date) -> dict[Any, bar_math.DayBars]:
    first = today - timedelta(days=DAYS - 1)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    midnight = datetime(today.year, today.month, today.day, tzinfo=UTC)
    out = {m: bar_math.DayBars(first, DAYS) for m in monitor_ids}
    # The bucket start is read as text ("2026-12-01 00:00:00+00" on PostgreSQL, whose
    # connections Django sets to UTC; "2026-12-01 00:00:00" on SQLite): its first ten
    # characters are the UTC day. Parsing 4,500 timestamps into aware datetimes cost more
    # than the rest of the page together.
    index_of = {(first + timedelta(days=i)).isoformat(): i for i in range(DAYS)}
    day = Cast("bucket_start", output_field=CharField())
    # Closed days from daily rollups; today (not rolled up into a day yet) from its hours.
    daily = (
        ResultRollup.objects.filter(
            monitor_id__in=monitor_ids,
            granularity=Granularity.DAY,
            bucket_start__gte=start,
            bucket_start__lt=midnight,
        )
        .annotate(day=day)
        .values_list("monitor_id", "day", "up", "degraded", "down")
    )
    hourly = (
        ResultRollup.objects.filter(
            monitor_id__in=monitor_ids, granularity=Granularity.HOUR, bucket_start__gte=midnight
        )
        .annotate(day=day)
        .values_list("monitor_id", "day", "up", "degraded", "down")
    )
    for rows in (daily, hourly):
        for monitor_id, text, up, degraded, down in rows:
            index = index_of.get(text[:10])
            if index is not None:
                bars = out[monitor_id]
                bars.up[index] += up + degraded
                bars.down[index] += down
    return out


def _overall(rows: list[MonitorRow], active: list[IncidentView], maint: bool) -> str:
    statuses = [r.status for r in rows]
    down = statuses.count(MonitorStatus.DOWN)
    worst = "operational"

    def worse(candidate: str) -> None:
        nonlocal worst
        if _RANK[candidate] > _RANK[worst]:
            worst = candidate

    if down:
        worse("major" if down * 2 >= len(statuses) else "partial")
    if MonitorStatus.DEGRADED in statuses or active:
        worse("degraded")
    if MonitorStatus.MAINTENANCE in statuses or maint:
        worse("maintenance")
    return worst


def _maintenance(org_id: Any, monitors: list, now: datetime) -> list[MaintenanceView]:
    windows = (
        MaintenanceWindow.objects.filter(organization_id=org_id, kind=WindowKind.MAINTENANCE)
        .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
        .prefetch_related("monitors")
        .order_by("starts_at", "created_at")
    )
    out = []
    for window in windows:
        if not any(window_math.covers(window, m) for m in monitors):
            continue
        occurrence = window_math.occurrence_at(window, now)
        if occurrence is not None:
            out.append(MaintenanceView(window.name, occurrence[0], occurrence[1], True))
            continue
        start = window_math.next_start(window, now)
        if start is not None and start - now <= UPCOMING_MAINTENANCE:
            length = (
                window.ends_at - window.starts_at
                if window.recurrence == "once" and window.ends_at and window.starts_at
                else timedelta(minutes=window.duration_minutes or 0)
            )
            out.append(MaintenanceView(window.name, start, start + length, False))
    return out


def _incidents(
    page: StatusPage, names: dict[Any, tuple[str, str]], now: datetime
) -> list[IncidentView]:
    monitor_ids = list(names)
    since = now - timedelta(days=page.history_days)
    incidents = (
        Incident.objects.filter(organization_id=page.organization_id)
        .filter(
            Q(monitor_id__in=monitor_ids)
            # An incident raised without a monitor is shown once a member posts about it.
            | Q(monitor__isnull=True, pk__in=IncidentUpdate.objects.values("incident_id"))
        )
        .filter(Q(status__in=OPEN_STATUSES) | Q(resolved_at__gte=since))
        .select_related("postmortem")
        .prefetch_related(
            Prefetch("status_updates", queryset=IncidentUpdate.objects.order_by("-posted_at"))
        )
        .order_by("-opened_at")[:MAX_INCIDENTS]
    )
    out = []
    for incident in incidents:
        updates = list(incident.status_updates.all())
        # A missing reverse one-to-one raises an AttributeError subclass: none written yet.
        postmortem = getattr(incident, "postmortem", None)
        if postmortem is not None and not postmortem.published:
            postmortem = None
        out.append(
            IncidentView(
                incident,
                public_state(incident, updates),
                updates,
                postmortem,
                public_title(incident, names),
            )
        )
    return out


def page_snapshot(*, page: StatusPage, now: datetime | None = None) -> PageSnapshot:
    """Everything the page, its feed and status.json show, in a fixed number of queries."""
    now = now or timezone.now()
    today = now.astimezone(UTC).date()
    sections = list(
        StatusPageSection.objects.filter(page=page).prefetch_related(
            Prefetch(
                "items",
                queryset=StatusPageMonitor.objects.select_related("monitor").order_by(
                    "position", "created_at"
                ),
            )
        )
    )
    items = [item for section in sections for item in section.items.all()]
    monitors = {item.monitor_id: item.monitor for item in items}
    ids = list(monitors)
    day_bars = _day_bars(ids, today) if ids else {}
    labels = bar_math.day_labels([today - timedelta(days=DAYS - 1 - i) for i in range(DAYS)])
    views = []
    rows: list[MonitorRow] = []
    for section in sections:
        section_rows = []
        for item in section.items.all():
            bars = day_bars[item.monitor_id]
            name = item.public_name
            row = MonitorRow(
                id=item.monitor_id,
                name=name,
                status=item.monitor.status,
                bars=bars,
                uptime=bars.overall(),
                svg=bar_math.svg(bars, labels, escape(name)),
            )
            section_rows.append(row)
            rows.append(row)
        views.append(SectionView(section.name, section_rows))
    maintenance = _maintenance(page.organization_id, list(monitors.values()), now) if ids else []
    names = {item.monitor_id: (item.monitor.name, item.public_name) for item in items}
    incidents = _incidents(page, names, now)
    active = [i for i in incidents if i.is_active]
    history = [i for i in incidents if not i.is_active]
    return PageSnapshot(
        page=page,
        overall=_overall(rows, active, any(m.active for m in maintenance)),
        sections=views,
        active_incidents=active,
        history=history,
        maintenance=maintenance,
        days=[today - timedelta(days=DAYS - 1), today],
        generated_at=now,
        monitor_count=len(rows),
    )
