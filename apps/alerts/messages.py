"""What a notification says: rendered once when its row is written (the payload), turned into a
transport `Message` at each attempt. Rendering at write time means a retry an hour later sends
what was true when the event happened, not whatever the incident says by then."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.alerts.channels import Message
from apps.alerts.models import Notification, NotificationKind
from apps.core.actors import actor_label
from apps.incidents.models import Incident, IncidentEvent

# A grouped message names at most this many incidents in its text (all of them in `extra`).
GROUP_TEXT_LINES = 50


def incident_url(incident: Incident) -> str | None:
    base = settings.HEALTHORCH_PUBLIC_URL.rstrip("/")
    return f"{base}/api/v1/incidents/{incident.pk}/" if base else None


def _subject(incident: Incident) -> str:
    return incident.monitor.name if incident.monitor_id else incident.title


def incident_payload(
    *, incident: Incident, kind: str, event: IncidentEvent | None = None, step: int | None = None
) -> dict[str, Any]:
    title = incident.title
    lines: list[str] = []
    if kind == NotificationKind.RESOLVED:
        title = f"Resolved: {incident.title}"
        if incident.resolved_at:
            # Who closed it, when someone did (a user or an API key); nobody: it recovered.
            who = actor_label(
                incident.resolved_by if incident.resolved_by_id else None,
                incident.resolved_by_key,
            )
            by = f" by {who}" if who else ""
            lines.append(f"Resolved at {incident.resolved_at.isoformat()}{by}.")
    elif kind == NotificationKind.ESCALATED:
        title = f"Still unacknowledged (escalation step {step}): {incident.title}"
    elif kind == NotificationKind.FLAPPING:
        title = f"{_subject(incident)} is flapping"
    if event is not None and event.note:
        lines.append(event.note)
    if incident.description:
        lines.append(incident.description)
    error = (incident.cause or {}).get("error")
    if error:
        lines.append(f"Cause: {error}")
    lines.append(f"Severity {incident.severity}, opened {incident.opened_at.isoformat()}.")
    return {
        "title": title,
        "body": "\n".join(lines),
        "incident_id": str(incident.pk),
        "monitor": incident.monitor.name if incident.monitor_id else None,
        "url": incident_url(incident),
        "occurred_at": (event.at if event is not None else timezone.now()).isoformat(),
        "extra": {"rule": incident.rule, **({"step": step} if step is not None else {})},
    }


def group_payload(
    *, org_name: str, members: list[Notification], earlier: list[dict[str, Any]]
) -> dict[str, Any]:
    """One message listing every incident of the batch, and those notified alone just before."""
    listed = [
        {
            "incident_id": m.payload.get("incident_id"),
            "title": m.payload.get("title"),
            "monitor": m.payload.get("monitor"),
            "severity": m.severity,
        }
        for m in members
    ]
    total = len(listed) + len(earlier)
    lines = [f"{total} incidents opened in {org_name} within a minute:"]
    lines += [f"- {item['title']} ({item['severity']})" for item in listed[:GROUP_TEXT_LINES]]
    if len(listed) > GROUP_TEXT_LINES:
        lines.append(f"... and {len(listed) - GROUP_TEXT_LINES} more.")
    if earlier:
        lines.append(f"Notified separately just before: {', '.join(e['title'] for e in earlier)}")
    return {
        "title": f"{total} incidents opened in {org_name}",
        "body": "\n".join(lines),
        "incident_id": None,
        "monitor": None,
        "url": None,
        "occurred_at": timezone.now().isoformat(),
        "extra": {"grouped": True, "count": total, "incidents": listed, "earlier": earlier},
    }


def test_payload(channel_name: str) -> dict[str, Any]:
    return {
        "title": f"Test message for {channel_name}",
        "body": "healthorch can reach this channel. No action is needed.",
        "incident_id": None,
        "monitor": None,
        "url": None,
        "occurred_at": timezone.now().isoformat(),
        "extra": {},
    }


_EVENTS = {
    NotificationKind.OPENED: "opened",
    NotificationKind.ESCALATED: "escalated",
    NotificationKind.RESOLVED: "resolved",
    NotificationKind.FLAPPING: "flapping",
    NotificationKind.TEST: "test",
}


def message_for(notification: Notification) -> Message:
    p = notification.payload
    occurred = parse_datetime(p.get("occurred_at") or "") or notification.created_at
    return Message(
        title=p.get("title") or "healthorch notification",
        body=p.get("body") or "",
        severity=notification.severity,
        event=_EVENTS[notification.kind],
        incident_id=p.get("incident_id"),
        monitor_name=p.get("monitor"),
        url=p.get("url"),
        occurred_at=occurred,
        # The key lets a receiver drop a duplicate if a worker died after sending but before
        # recording it (the only way a second delivery of one key can happen).
        extra={**(p.get("extra") or {}), "idempotency_key": notification.idempotency_key},
    )
