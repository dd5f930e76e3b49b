"""The JSON form of a page snapshot (status.json): stable field names for machines."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.urls import reverse

from apps.statuspages.bars import DayBars
from apps.statuspages.selectors import IncidentView, PageSnapshot


def _when(value) -> str | None:
    return value.isoformat() if value else None


def _incident(view: IncidentView) -> dict[str, Any]:
    incident = view.incident
    return {
        "id": str(incident.pk),
        "title": view.title,
        "status": view.public_status,
        "severity": incident.severity,
        "started_at": _when(incident.opened_at),
        "resolved_at": _when(incident.resolved_at),
        "updates": [
            {"status": u.status, "message": u.message, "posted_at": _when(u.posted_at)}
            for u in view.updates
        ],
        "postmortem": (
            {"body": view.postmortem.body, "updated_at": _when(view.postmortem.updated_at)}
            if view.postmortem is not None
            else None
        ),
    }


def _days(bars: DayBars, dates: list[str]) -> list[dict[str, Any]]:
    out = []
    for i in range(len(bars)):
        total = bars.up[i] + bars.down[i]
        out.append(
            {
                "date": dates[i],
                "uptime": round(100 * bars.up[i] / total, 4) if total else None,
                "checks": total,
            }
        )
    return out


def snapshot_json(snapshot: PageSnapshot, base: str) -> dict[str, Any]:
    page = snapshot.page
    first = snapshot.days[0]
    dates = [
        (first + timedelta(days=i)).isoformat() for i in range((snapshot.days[1] - first).days + 1)
    ]
    return {
        "page": {
            "name": page.name,
            "slug": page.slug,
            "url": base + reverse("statuspage", kwargs={"slug": page.slug}),
        },
        "status": {"indicator": snapshot.overall, "description": snapshot.overall_label},
        "sections": [
            {
                "name": section.name,
                "monitors": [
                    {
                        "id": str(row.id),
                        "name": row.name,
                        "status": row.status,
                        "uptime_90d": round(row.uptime, 4) if row.uptime is not None else None,
                        "days": _days(row.bars, dates),
                    }
                    for row in section.rows
                ],
            }
            for section in snapshot.sections
        ],
        "active_incidents": [_incident(v) for v in snapshot.active_incidents],
        "recent_incidents": [_incident(v) for v in snapshot.history],
        "maintenance": [
            {
                "name": m.name,
                "starts_at": _when(m.starts_at),
                "ends_at": _when(m.ends_at),
                "active": m.active,
            }
            for m in snapshot.maintenance
        ],
        "generated_at": _when(snapshot.generated_at),
    }
