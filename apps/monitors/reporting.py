"""Reads behind the operator commands: which monitors run, how each is doing, and the totals.

`org=None` means every organization: the commands are an operator's view, not a tenant's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import CommandError
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from apps.monitors.checkers.base import Outcome
from apps.monitors.models import ACTIVE_KINDS, CheckResult, Monitor, MonitorStatus
from apps.tenants.models import Organization

UPTIME_WINDOW = timedelta(hours=24)
_HEALTHY = (Outcome.UP, Outcome.DEGRADED)
# Inconclusive results say the checker could not tell, so they count neither way.
_DECISIVE = (*_HEALTHY, Outcome.DOWN)


def organization_option(slug: str | None) -> Organization | None:
    """The organization an `--org SLUG` names (None without the option); exit status 2 for an
    unknown slug, so scripts can tell a typo from a failed check."""
    if slug is None:
        return None
    org = Organization.objects.select_related("plan").filter(slug=slug).first()
    if org is None:
        raise CommandError(f"No organization with the slug '{slug}'.", returncode=2)
    return org


def _monitors(org: Organization | None) -> QuerySet[Monitor]:
    qs = Monitor.objects.for_org(org) if org is not None else Monitor.objects.all()
    return qs.select_related("organization")


def runnable_monitors(*, org: Organization | None = None) -> list[Monitor]:
    """Monitors the scheduler would run: unpaused, of a kind the engine checks."""
    return list(
        _monitors(org)
        .filter(paused=False, kind__in=ACTIVE_KINDS)
        .order_by("organization__slug", "name", "id")
    )


def uptime_since(*, org: Organization | None, since: datetime) -> dict[Any, tuple[int, int]]:
    """{monitor id: (healthy results, decisive results)} from `since` on."""
    qs = CheckResult.objects.filter(checked_at__gte=since, outcome__in=_DECISIVE)
    if org is not None:
        qs = qs.for_org(org)
    rows = qs.values("monitor_id").annotate(
        healthy=Count("id", filter=Q(outcome__in=_HEALTHY)), total=Count("id")
    )
    return {row["monitor_id"]: (row["healthy"], row["total"]) for row in rows}


def health_report(*, org: Organization | None = None, now: datetime | None = None) -> list[dict]:
    now = now or timezone.now()
    counts = uptime_since(org=org, since=now - UPTIME_WINDOW)
    report = []
    for m in _monitors(org).order_by("organization__slug", "name", "id"):
        healthy, total = counts.get(m.pk, (0, 0))
        report.append(
            {
                "organization": m.organization.slug,
                "slug": m.slug,
                "name": m.name,
                "kind": m.kind,
                "status": m.status,
                "critical": m.critical,
                "last_up_at": m.last_up_at.isoformat() if m.last_up_at else None,
                "consecutive_failures": m.consecutive_failures,
                "uptime_24h": round(healthy / total * 100, 3) if total else None,
                "results_24h": total,
            }
        )
    return report


def health_summary(*, org: Organization | None = None) -> dict[str, Any]:
    # Paused first: a paused monitor's last status is history, not health.
    running = Q(paused=False)
    healthy = running & Q(status__in=[MonitorStatus.UP, MonitorStatus.DEGRADED])
    down = running & Q(status=MonitorStatus.DOWN)
    buckets = {
        "total": Q(),
        "healthy": healthy,
        "unhealthy": down,
        "critical_unhealthy": down & Q(critical=True),
        "paused": Q(paused=True),
        "unknown": running & Q(status=MonitorStatus.UNKNOWN),
        "maintenance": running & Q(status=MonitorStatus.MAINTENANCE),
    }
    # Aliased: an aggregate named like a field ("paused") would shadow it in the filters.
    totals = _monitors(org).aggregate(
        **{f"n_{name}": Count("id", filter=q) for name, q in buckets.items()}
    )
    counts: dict[str, Any] = {name: totals[f"n_{name}"] for name in buckets}
    decided = counts["healthy"] + counts["unhealthy"]
    counts["health_percentage"] = round(counts["healthy"] / decided * 100, 2) if decided else 100.0
    return {"organization": org.slug if org is not None else None, **counts}
