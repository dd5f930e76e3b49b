"""Reads: SLA reports, the monitor uptime windows, the summary, error analysis and the
operators' platform view. All figures come from apps.reports.engine (one source of truth)."""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Max, Min, Sum
from django.utils import timezone

from apps.incidents.models import OPEN_STATUSES, Incident
from apps.monitors import selectors as monitor_selectors
from apps.monitors.models import ErrorRollup, Granularity, Monitor, ResultRollup
from apps.reports import engine
from apps.reports.models import ReportSettings
from apps.reports.periods import ROLLING, Period, hour_floor, rolling
from apps.reports.sla import COUNTS, Accounting, Tally
from apps.telemetry import selectors as telemetry_selectors
from apps.tenants.models import Organization

#: the rolling windows `monitor_uptime` reports ("24h", "7d", "30d", "90d")
ROLLING_PERIODS = tuple(ROLLING)

UNTAGGED = "untagged"


def report_settings_for(org: Organization) -> ReportSettings:
    """The organization's settings, or unsaved defaults when it never changed them."""
    found = ReportSettings.objects.filter(organization=org).first()
    return found or ReportSettings(organization=org)


def accounting_of(settings: ReportSettings) -> Accounting:
    return Accounting(
        exclude_maintenance=settings.exclude_maintenance,
        degraded_counts_as_up=settings.degraded_counts_as_up,
    )


def tz_of(settings: ReportSettings) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(settings.timezone or "UTC")


def report_monitors(*, org: Organization, monitor: Monitor | None = None, tag: str | None = None):
    qs = Monitor.objects.for_org(org).order_by("name", "id")
    if monitor is not None:
        return [monitor]
    monitors = list(qs)
    if tag is not None:
        monitors = [m for m in monitors if tag in (m.tags or [])]
    return monitors


def sla_report(
    *,
    org: Organization,
    period: Period,
    monitors: list[Monitor],
    settings: ReportSettings | None = None,
    now: datetime | None = None,
    scope: dict | None = None,
) -> dict:
    """The SLA report of these monitors over the period: the organization (or tag) summary,
    one summary per group (a monitor's first tag), and one row per monitor."""
    settings = settings or report_settings_for(org)
    accounting = accounting_of(settings)
    rows = engine.monitor_rows(
        org=org,
        monitors=monitors,
        period=period,
        accounting=accounting,
        tz=tz_of(settings),
        now=now,
    )
    targets = engine.Targets.of(org)
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["monitor"]["tags"] or [UNTAGGED])[0]].append(row)
    return {
        "organization": org.slug,
        "plan": targets.plan,
        "scope": scope or {"kind": "organization"},
        "period": period.as_dict(),
        "timezone": settings.timezone,
        "accounting": {
            "exclude_maintenance": accounting.exclude_maintenance,
            "degraded_counts_as_up": accounting.degraded_counts_as_up,
        },
        "generated_at": (now or timezone.now()).isoformat(),
        "summary": engine.summarize(rows, targets=targets, accounting=accounting),
        "groups": [
            {
                "name": name,
                "summary": engine.summarize(g, targets=targets, accounting=accounting),
                "monitors": [r["monitor"]["id"] for r in g],
            }
            for name, g in sorted(groups.items())
        ],
        "monitors": [engine.public(r) for r in rows],
    }


def monitor_uptime(
    *, monitor: Monitor, now: datetime | None = None, windows: Iterable[str] = tuple(ROLLING)
) -> dict[str, dict]:
    """The uptime endpoint's 24 h / 7 d / 30 d / 90 d windows (or the ones asked for, as a
    badge asks for one), straight from the SLA engine: same accounting as the reports, the
    organization's settings included."""
    now = now or timezone.now()
    settings = report_settings_for(monitor.organization)
    out = {}
    for name in windows:
        [row] = engine.monitor_rows(
            org=monitor.organization,
            monitors=[monitor],
            period=rolling(name, now),
            accounting=accounting_of(settings),
            tz=tz_of(settings),
            now=now,
        )
        out[name] = {
            "uptime_pct": row["availability_pct"],
            "checks": row["checks"]["counted"],
            "p50_ms": row["response_ms"]["p50"],
            "p95_ms": row["response_ms"]["p95"],
            "p99_ms": row["response_ms"]["p99"],
        }
    return out


def summary(*, org: Organization) -> dict[str, Any]:
    """Monitor totals (apps.monitors.reporting, as the `healthsummary` command prints them)
    plus the open incidents."""
    counts = monitor_selectors.health_summary(org=org)
    open_incidents = Incident.objects.for_org(org).filter(status__in=OPEN_STATUSES)
    counts["active_incidents"] = open_incidents.count()
    return counts


def error_groups(
    *, org: Organization, since: datetime, until: datetime, monitor: Monitor | None = None
) -> list[dict]:
    """Failures grouped by monitor, error class and message over [since, until): hourly error
    rollups for complete hours, the current hour from raw results (at most one hour)."""
    live_from = hour_floor(timezone.now())
    qs = ErrorRollup.objects.for_org(org).filter(
        bucket_start__gte=hour_floor(since), bucket_start__lt=min(until, live_from)
    )
    if monitor is not None:
        qs = qs.filter(monitor=monitor)
    groups: dict[tuple, dict] = {}
    for row in qs.values("monitor_id", "outcome", "error_class", "message").annotate(
        n=Sum("count"), first=Min("first_seen"), last=Max("last_seen")
    ):
        key = (row["monitor_id"], row["outcome"], row["error_class"], row["message"])
        groups[key] = {"count": row["n"], "first_seen": row["first"], "last_seen": row["last"]}
    if until > live_from:
        ids = (
            [monitor.pk]
            if monitor is not None
            else list(Monitor.objects.for_org(org).values_list("pk", flat=True))
        )
        for monitor_id, acc in monitor_selectors.accumulate(
            max(live_from, since), until, monitor_ids=ids
        ).items():
            for (outcome, error_class, message), (n, first, last) in acc.errors.items():
                g = groups.setdefault(
                    (monitor_id, outcome, error_class, message),
                    {"count": 0, "first_seen": first, "last_seen": last},
                )
                g["count"] += n
                g["first_seen"] = min(g["first_seen"], first)
                g["last_seen"] = max(g["last_seen"], last)
    names = dict(Monitor.objects.filter(pk__in={k[0] for k in groups}).values_list("pk", "name"))
    out = [
        {
            "monitor": {"id": str(k[0]), "name": names.get(k[0], "")},
            "outcome": k[1],
            "error_class": k[2],
            "message": k[3],
            "count": v["count"],
            "first_seen": v["first_seen"].isoformat(),
            "last_seen": v["last_seen"].isoformat(),
        }
        for k, v in groups.items()
    ]
    out.sort(key=lambda g: (-g["count"], g["monitor"]["name"], g["error_class"], g["message"]))
    return out


def error_signatures(
    *,
    org: Organization,
    since: datetime,
    until: datetime,
    now: datetime,
    source: str | None,
    offset: int,
    limit: int,
) -> tuple[list[dict], bool]:
    """The error log signatures of the report (telemetry mines and reads them): a page, and
    whether more follow."""
    return telemetry_selectors.error_signature_report(
        org=org, since=since, until=until, now=now, source=source, offset=offset, limit=limit
    )


def platform_sla_overview(*, days: int = 30, now: datetime | None = None, worst: int = 10) -> dict:
    """Operators' view over every organization for the last `days` days (complete hours):
    how many meet their plan's availability target, the average availability, the worst ten.

    Per organization: the mean availability of its monitors under its own accounting settings,
    compared with its plan's target. Two grouped queries plus settings and organizations, so
    its cost grows with rollup rows, not with a query per organization.
    """
    now = now or timezone.now()
    end = hour_floor(now)
    start = end - timedelta(days=days)
    per_monitor = (
        ResultRollup.objects.filter(
            granularity=Granularity.HOUR, bucket_start__gte=start, bucket_start__lt=end
        )
        .values("organization_id", "monitor_id")
        .annotate(**{f"s_{k}": Sum(k) for k in COUNTS})
        .order_by()
    )
    settings = {s.organization_id: s for s in ReportSettings.objects.all()}
    by_org: dict[Any, list[float]] = defaultdict(list)
    for row in per_monitor:
        org_id = row["organization_id"]
        s = settings.get(org_id) or ReportSettings()
        t = Tally()
        t.add({k[2:]: v for k, v in row.items() if k.startswith("s_")})
        a = t.availability(accounting_of(s))
        if a is not None:
            by_org[org_id].append(a)
    orgs = Organization.objects.filter(pk__in=by_org).select_related("plan")
    rows = []
    for org in orgs:
        values = by_org[org.pk]
        availability = sum(values) / len(values)
        target = float(org.plan.sla_availability_pct)
        rows.append(
            {
                "organization": org.slug,
                "name": org.name,
                "plan": org.plan.code,
                "monitors": len(values),
                "availability_pct": round(availability, 4),
                "target_pct": target,
                "compliant": availability >= target,
            }
        )
    rows.sort(key=lambda r: (r["availability_pct"], r["organization"]))
    return {
        "period": {"start": start.isoformat(), "end": end.isoformat(), "days": days},
        "organizations": len(rows),
        "compliant": sum(1 for r in rows if r["compliant"]),
        "non_compliant": sum(1 for r in rows if not r["compliant"]),
        "average_availability_pct": (
            round(sum(r["availability_pct"] for r in rows) / len(rows), 4) if rows else None
        ),
        "worst": rows[:worst],
    }
