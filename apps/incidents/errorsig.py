"""The error_signature rule: open an incident when a source logs an error signature never seen
before, or when a signature's rate jumps against its own baseline; resolve it when the
signature goes quiet. Signatures are mined by apps.telemetry (apps.telemetry.mining) and read
through its selectors.

Off by default: nothing is evaluated for an organization until it enables the rule. Per rule:

- **new**: a signature mining created in the last `NEW_WITHIN` (so a signature is new once,
  whatever the sweep's timing) opens an incident at the rule's severity;
- **rate jump**: a signature with at least `MIN_COUNT` lines over the rule's window
  (`window_seconds`, 300 by default) whose rate over it, per hour, is more than `threshold`
  (10 by default) times its hourly mean over the 24 complete hours before the current one;
- **quiet**: an open incident resolves when its signature logged nothing for `QUIET`, or the
  rule is turned off.

One open incident per (rule, signature): these incidents belong to no monitor (the
one-open-per-monitor constraint would allow one signature per source only); the signature is
in the cause. The sweep locks the organizations' error_signature rule rows before reading the
open incidents, so two sweeps never open the same one twice. A source that is also a
monitor's slug names the monitor in the cause (root cause reads it the other way round).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.incidents import opening
from apps.incidents.models import OPEN_STATUSES, AlertRule, Incident, RuleKind
from apps.incidents.rules import from_row
from apps.monitors.models import Monitor
from apps.telemetry import selectors as logs

logger = logging.getLogger(__name__)

KIND = RuleKind.ERROR_SIGNATURE
#: lines a signature needs over the window before a rate jump counts
MIN_COUNT = 10
#: a signature mining made this recently is new to the rule (the sweep runs every minute)
NEW_WITHIN = timedelta(minutes=10)
#: an open incident resolves once its signature logged nothing for this long
QUIET = timedelta(minutes=30)
#: incidents one sweep opens per organization at most (its first mining of a backlog makes
#: every signature new at once: the busiest ones are opened, the rest stay in the report)
MAX_OPEN = 20


def _hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def _template(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_signature_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Open error_signature incidents for new and jumping signatures, resolve quiet ones."""
    now = now or timezone.now()
    with_open = set(
        Incident.objects.filter(rule=KIND, status__in=OPEN_STATUSES)
        .order_by()
        .values_list("organization_id", flat=True)
        .distinct()
    )
    with transaction.atomic():
        # The lock that makes this sweep the only opener for these organizations.
        rows = list(
            AlertRule.objects.select_for_update()
            .filter(kind=KIND)
            .filter(Q(enabled=True) | Q(organization_id__in=list(with_open)))
            .order_by("pk")
        )
        if not rows and not with_open:
            return {"opened": 0, "resolved": 0, "evaluated": 0}
        rules = {r.organization_id: from_row(r) for r in rows}
        enabled = {org for org, rule in rules.items() if rule.enabled}
        open_by_sig: dict[Any, Incident] = {
            i.cause.get("signature_pk"): i
            for i in Incident.objects.filter(
                rule=KIND, status__in=OPEN_STATUSES, organization_id__in=list(rules)
            )
        }
        fired = _evaluate(enabled, rules, now=now)
        sigs = logs.error_signatures_by_id(set(fired) | set(open_by_sig))
        to_open: list[Incident] = []
        seen: list = []
        for sig_id, (reason, facts) in fired.items():
            if sig_id in open_by_sig:
                if reason == "rate":  # still jumping: once more on its timeline
                    seen.append((open_by_sig[sig_id], now, None, facts))
            else:
                to_open.append(_incident(sigs[sig_id], rules, reason, facts, now=now))
        to_open = _capped(to_open)
        _name_monitors(to_open)
        stopped = []
        for sig_id, incident in open_by_sig.items():
            sig = sigs.get(sig_id)
            if incident.organization_id not in enabled:
                stopped.append((incident, False, {"note": "rule disabled"}))
            elif sig is None or (sig_id not in fired and sig.last_seen < now - QUIET):
                stopped.append(
                    (incident, True, {"note": "the signature logged nothing for 30 minutes"})
                )
        resolved = len(opening.incidents_resolve_many(stopped, at=now))
        opening.incidents_seen_many(seen)
        opening.incidents_open_detached(to_open)
    if to_open or resolved:
        logger.info(
            "error signature incidents", extra={"opened": len(to_open), "resolved": resolved}
        )
    return {"opened": len(to_open), "resolved": resolved, "evaluated": len(rules)}


def _evaluate(enabled: set, rules: dict, *, now: datetime) -> dict[Any, tuple[str, dict]]:
    """{signature id: ("new" | "rate", facts)} for the enabled organizations: one read of the
    new signatures, one of the window counts per distinct window, one of the baselines."""
    if not enabled:
        return {}
    fired: dict[Any, tuple[str, dict]] = {}
    by_window: dict[int, set] = {}
    for org in enabled:
        by_window.setdefault(rules[org].window_seconds, set()).add(org)
    counts: dict[Any, tuple[int, int]] = {}  # signature id: (lines in window, window seconds)
    for seconds, orgs in by_window.items():
        since = now - timedelta(seconds=seconds)
        for sig_id, n in logs.error_signature_recent_counts(org_ids=orgs, since=since).items():
            if n >= MIN_COUNT:
                counts[sig_id] = (n, seconds)
    base_end = _hour(now)
    baseline = logs.error_signature_hour_sums(
        signature_ids=counts, since=base_end - timedelta(hours=24), until=base_end
    )
    by_sig_org = {}
    if counts:
        by_sig_org = {s.pk: s.organization_id for s in logs.error_signatures_by_id(counts).values()}
    for sig_id, (n, seconds) in counts.items():
        mean = baseline.get(sig_id, 0) / 24
        rate = n * 3600 / seconds
        factor = rules[by_sig_org[sig_id]].threshold
        if rate > factor * mean:
            fired[sig_id] = (
                "rate",
                {
                    "count": n,
                    "window_seconds": seconds,
                    "per_hour": round(rate, 1),
                    "hourly_mean_day_before": round(mean, 2),
                },
            )
    for sig in logs.error_signatures_created(org_ids=enabled, since=now - NEW_WITHIN):
        fired.setdefault(sig.pk, ("new", {"count": sig.total}))
    return fired


def _incident(sig: Any, rules: dict, reason: str, facts: dict, *, now: datetime) -> Incident:
    template = _template(sig.template)
    if reason == "new":
        title = f"New error in {sig.source}: {template} ({facts['count']} line(s))"
    else:
        minutes = facts["window_seconds"] // 60
        title = (
            f"Error rate jump in {sig.source}: {template} ({facts['count']} lines in "
            f"{minutes} min, {facts['per_hour']:g}/h against {facts['hourly_mean_day_before']:g}"
            "/h over the day before)"
        )
    return Incident(
        organization_id=sig.organization_id,
        monitor=None,
        rule=KIND,
        title=title[:300],
        severity=rules[sig.organization_id].severity,
        cause={
            "rule": KIND,
            "reason": reason,
            "signature": sig.hash,
            "signature_pk": sig.pk,
            "source": sig.source,
            "template": sig.template,
            "first_seen": sig.first_seen.isoformat(),
            **facts,
        },
        opened_at=now,
        last_seen_at=now,
    )


def _capped(incidents: list[Incident]) -> list[Incident]:
    """At most MAX_OPEN per organization, rate jumps first, then the most lines."""
    incidents.sort(key=lambda i: (i.cause["reason"] != "rate", -i.cause["count"], i.title))
    taken: dict[Any, int] = {}
    out = []
    for incident in incidents:
        n = taken.get(incident.organization_id, 0)
        if n < MAX_OPEN:
            taken[incident.organization_id] = n + 1
            out.append(incident)
    return out


def _name_monitors(incidents: list[Incident]) -> None:
    """Name in the cause the monitor whose slug is the source, where there is one."""
    if not incidents:
        return
    monitors = {
        (org, slug): pk
        for org, slug, pk in Monitor.objects.filter(
            organization_id__in={i.organization_id for i in incidents},
            slug__in={i.cause["source"] for i in incidents},
        ).values_list("organization_id", "slug", "pk")
    }
    for incident in incidents:
        pk = monitors.get((incident.organization_id, incident.cause["source"]))
        if pk is not None:
            incident.cause["monitor"] = str(pk)
