"""Root-cause analysis for an incident: what changed just before it, ranked with evidence.

Deterministic and always available. Evidence kinds, each scored 0..1:

- `error_spike`: an error class in the monitor's results around the opening (30 min before to
  5 min after) far above its rate over the day before;
- `latency_anomaly`: the anomaly model (apps.healing.anomaly) over the latency before opening;
- `failing_together`: other monitors' incidents opened within 15 minutes, and the tags they
  share with this monitor (a shared tag is often the shared cause: a database, a region);
- `region`: failures seen from some regions only (the network path, not the service);
- `dependency`: a monitor this one depends on failed in the window;
- `config_change`: audit-log changes in the two hours before (changes to this monitor first);
- `new_log_signature`: error log signatures of the incident's log source first seen in the
  window, most lines first; `log_error_rate`: that source's error lines per hour in the hours
  around the opening against the day before, when more than doubled. The log source of a
  monitor is the source named as its slug; an error_signature incident names its own.

Optionally (ROOT_CAUSE_LLM_URL, an Ollama-compatible `/api/generate`), a language model
rewrites the same evidence as prose. Its prompt is built only from the evidence titles and
counts (never configs, URLs or secrets), it has a timeout, and on any failure the
deterministic summary is returned with the error. The URL is the operator's (a setting, often
a model server inside the network), so the private-address refusal does not apply; the call
still goes through the outbound guard (`Guard.for_operator()`: resolved once and pinned, no
proxies from the environment, no redirects, the answer read up to `LLM_ANSWER_LIMIT` bytes).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.db.models import Count

from apps.core import outbound, ssrf
from apps.healing import anomaly, selectors
from apps.incidents.models import Incident, MonitorDependency, RuleKind
from apps.telemetry import selectors as logs

logger = logging.getLogger(__name__)

BEFORE = timedelta(minutes=30)
AFTER = timedelta(minutes=5)
TOGETHER = timedelta(minutes=15)
CHANGES_BEFORE = timedelta(hours=2)
LLM_ANSWER_LIMIT = 256 * 1024  # bytes of the model's JSON answer read at most


@dataclass
class Evidence:
    kind: str
    title: str
    score: float
    details: dict[str, Any] = field(default_factory=dict)


def _error_spike(incident: Incident) -> list[Evidence]:
    from apps.monitors.models import CheckResult

    def failures_by_class(**checked_at: Any) -> dict[str, int]:
        return dict(
            CheckResult.objects.filter(monitor_id=incident.monitor_id, **checked_at)
            .exclude(error_class="")
            .values_list("error_class")
            .annotate(n=Count("id"))
            .values_list("error_class", "n")
            .order_by()
        )

    start, end = incident.opened_at - BEFORE, incident.opened_at + AFTER
    base_start = start - timedelta(hours=24)
    window = Counter(failures_by_class(checked_at__gte=start, checked_at__lte=end))
    before = failures_by_class(checked_at__gte=base_start, checked_at__lt=start)
    out = []
    window_hours = (BEFORE + AFTER).total_seconds() / 3600
    for error_class, n in window.most_common():
        base_rate = before.get(error_class, 0) / 24  # per hour
        rate = n / window_hours
        if rate <= 2 * base_rate or n < 2:
            continue
        score = (
            min(1.0, 0.5 + 0.1 * n)
            if base_rate == 0
            else min(0.9, 0.3 + rate / (rate + base_rate) / 2)
        )
        out.append(
            Evidence(
                "error_spike",
                f"{n} '{error_class}' failures around the opening"
                + (
                    " (none in the day before)"
                    if base_rate == 0
                    else f" ({before[error_class]} in the day before)"
                ),
                round(score, 2),
                {"error_class": error_class, "count": n, "day_before": before.get(error_class, 0)},
            )
        )
    return out


def _latency(incident: Incident) -> list[Evidence]:
    series = selectors.latency_series(monitor=incident.monitor, now=incident.opened_at)
    verdict = anomaly.detect(series, now=incident.opened_at)
    if not verdict.usable or not verdict.anomalous:
        return []
    return [Evidence("latency_anomaly", verdict.reason, 0.7, verdict.as_dict())]


def _together(incident: Incident) -> list[Evidence]:
    others = list(
        Incident.objects.filter(
            organization_id=incident.organization_id,
            opened_at__gte=incident.opened_at - TOGETHER,
            opened_at__lte=incident.opened_at + TOGETHER,
            monitor__isnull=False,
        )
        .exclude(pk=incident.pk)
        .select_related("monitor")
        .order_by("opened_at")[:50]
    )
    if not others:
        return []
    mine = set(incident.monitor.tags or [])
    shared = Counter(t for o in others for t in set(o.monitor.tags or []) & mine)
    names = sorted({o.monitor.name for o in others})
    out = [
        Evidence(
            "failing_together",
            f"{len(names)} other monitor(s) failed within 15 minutes: {', '.join(names[:5])}"
            + ("..." if len(names) > 5 else ""),
            round(min(0.85, 0.4 + 0.1 * len(names)), 2),
            {"monitors": names[:20], "incidents": [str(o.pk) for o in others[:20]]},
        )
    ]
    for tag, n in shared.most_common(3):
        out.append(
            Evidence(
                "shared_tag",
                f"Tag '{tag}' is shared with {n} of them: a common dependency is likely",
                round(min(0.9, 0.5 + 0.1 * n), 2),
                {"tag": tag, "monitors": n},
            )
        )
    return out


def _regions(incident: Incident) -> list[Evidence]:
    from apps.monitors.models import CheckResult

    rows = (
        CheckResult.objects.filter(
            monitor_id=incident.monitor_id,
            checked_at__gte=incident.opened_at - BEFORE,
            checked_at__lte=incident.opened_at + AFTER,
        )
        .values_list("region", "outcome")
        .annotate(n=Count("id"))
        .values_list("region", "outcome", "n")
        .order_by()
    )
    by_region: dict[str, Counter] = {}
    for region, outcome, n in rows:
        by_region.setdefault(region, Counter())[outcome] += n
    if len(by_region) < 2:
        return []
    failing = sorted(r for r, c in by_region.items() if c["down"] > c["up"])
    healthy = sorted(r for r, c in by_region.items() if c["up"] >= c["down"])
    if failing and healthy:
        return [
            Evidence(
                "region",
                f"Only {', '.join(failing)} saw failures; {', '.join(healthy)} did not: "
                "suspect the network path or a regional outage",
                0.6,
                {"failing": failing, "healthy": healthy},
            )
        ]
    return []


def _dependencies(incident: Incident) -> list[Evidence]:
    parents = list(
        MonitorDependency.objects.filter(monitor_id=incident.monitor_id).select_related(
            "depends_on"
        )
    )
    out = []
    for dep in parents:
        parent = dep.depends_on
        failed = Incident.objects.filter(
            monitor_id=parent.pk,
            opened_at__gte=incident.opened_at - BEFORE,
            opened_at__lte=incident.opened_at + AFTER,
        ).exists()
        if failed or parent.status == "down":
            out.append(
                Evidence(
                    "dependency",
                    f"'{parent.name}', which this monitor depends on, failed too",
                    0.9,
                    {"monitor": str(parent.pk), "name": parent.name, "status": parent.status},
                )
            )
    return out


# Fields a change may touch that say nothing about what a person configured: secrets and
# tokens (whose values the audit log redacts, and whose names would still leak into a model's
# prompt), the counters and state the engine moves by itself.
_NOT_CONFIGURATION = re.compile(
    r"secret|password|token|key_hash|api_key|^consecutive_|_count$|^status|^last_|^ping_window"
)


def configured_fields(changes: dict) -> list[str]:
    """The fields of an audited change that are configuration, sorted."""
    return sorted(name for name in changes if not _NOT_CONFIGURATION.search(name))


def _changes(incident: Incident) -> list[Evidence]:
    from apps.audit.selectors import changes_before

    entries = changes_before(
        org=incident.organization,
        since=incident.opened_at - CHANGES_BEFORE,
        until=incident.opened_at,
    )
    out = []
    for entry in entries:
        fields = configured_fields(entry.changes or {})
        if entry.changes and not fields:
            continue  # only secrets, tokens or counters moved: not a configuration change
        on_monitor = entry.object_id == str(incident.monitor_id)
        minutes = int((incident.opened_at - entry.at).total_seconds() // 60)
        out.append(
            Evidence(
                "config_change",
                f"{entry.actor_label} {entry.action.replace('.', ' ')} '{entry.object_repr}' "
                f"{minutes} min before" + (f" (changed: {', '.join(fields)})" if fields else ""),
                round((0.8 if on_monitor else 0.45) * (1 - minutes / 240), 2),
                {
                    "audit_entry": str(entry.pk),
                    "action": entry.action,
                    "object_type": entry.object_type,
                    "fields": fields,
                    "minutes_before": minutes,
                },
            )
        )
    return out


def log_source(incident: Incident) -> str | None:
    """The log source whose error lines speak for the incident: the one an error_signature
    incident names, else the monitor's slug (a service logs under the slug of its monitor)."""
    if incident.rule == RuleKind.ERROR_SIGNATURE:
        return (incident.cause or {}).get("source")
    return incident.monitor.slug if incident.monitor_id is not None else None


def _log_errors(incident: Incident) -> list[Evidence]:
    source = log_source(incident)
    if not source:
        return []
    found = logs.log_error_evidence(
        org=incident.organization,
        source=source,
        start=incident.opened_at - BEFORE,
        end=incident.opened_at + AFTER,
    )
    out = []
    for rank, sig in enumerate(found.new_signatures):
        minutes = int(
            (incident.opened_at - datetime.fromisoformat(sig["first_seen"])).total_seconds() // 60
        )
        when = f"{minutes} min before" if minutes >= 0 else f"{-minutes} min after"
        out.append(
            Evidence(
                "new_log_signature",
                f"New error in '{source}' logs {when} the opening: {sig['template'][:160]} "
                f"({sig['count']} line(s))",
                round(max(0.5, 0.8 - 0.05 * rank), 2),
                {"source": source, **sig},
            )
        )
    now, before = found.window_per_hour, found.day_before_per_hour
    if now >= 2 and now > 2 * before:
        out.append(
            Evidence(
                "log_error_rate",
                f"'{source}' logged {now:g} error lines/h around the opening against "
                f"{before:g}/h over the day before",
                round(min(0.85, 0.5 + 0.35 * (1 - before / now)), 2),
                {"source": source, "per_hour": now, "day_before_per_hour": before},
            )
        )
    return out


def evidence_for(incident: Incident) -> list[Evidence]:
    items: list[Evidence] = []
    if incident.monitor_id is not None:
        for gather in (_error_spike, _latency, _together, _regions, _dependencies):
            items.extend(gather(incident))
    items.extend(_log_errors(incident))
    items.extend(_changes(incident))
    # Highest score first; ties by kind then title, so the order never depends on the database.
    return sorted(items, key=lambda e: (-e.score, e.kind, e.title))


def deterministic_summary(incident: Incident, items: list[Evidence]) -> str:
    if not items:
        return (
            f"No change stands out before '{incident.title}': no error spike, latency "
            "anomaly, related failures or recent configuration changes."
        )
    top = items[:3]
    lines = [f"Most likely first: {top[0].title}."]
    lines += [f"Also: {e.title}." for e in top[1:]]
    return " ".join(lines)


# --- the optional language-model summary ------------------------------------------------------

# Belt and braces: evidence never carries secrets, but scrub anything shaped like one anyway.
_SECRETISH = re.compile(
    r"(hk_[A-Za-z0-9_\-]+|https?://\S+|[A-Za-z0-9_\-]{32,}|(?i:password|secret|token)\S*)"
)


def _scrub(text: str) -> str:
    return _SECRETISH.sub("[redacted]", text)


def build_prompt(incident: Incident, items: list[Evidence]) -> str:
    lines = [
        "You are an SRE assistant. In at most four sentences, explain the most likely root "
        "cause of this incident from the evidence, most likely first. Do not invent facts.",
        f"Incident: {_scrub(incident.title)} (severity {incident.severity}, rule "
        f"{incident.rule}, opened {incident.opened_at:%Y-%m-%d %H:%M} UTC).",
        "Evidence (score 0-1):",
    ]
    lines += [f"- [{e.score:.2f}] {e.kind}: {_scrub(e.title)}" for e in items[:10]]
    return "\n".join(lines)


def llm_summary(prompt: str) -> tuple[str, str]:
    """(text, error): the model's prose, or "" and why not."""
    url = settings.ROOT_CAUSE_LLM_URL.rstrip("/")
    try:
        with outbound.request(
            "POST",
            f"{url}/api/generate",
            guard=outbound.Guard.for_operator(),
            json={
                "model": settings.ROOT_CAUSE_LLM_MODEL,
                "prompt": prompt,
                "stream": False,
                "options": {"temperature": 0},
            },
            timeout=settings.ROOT_CAUSE_LLM_TIMEOUT_SECONDS,
        ) as response:
            if response.is_redirect:
                return "", f"language model answered a redirect ({response.status_code})"
            response.raise_for_status()
            answer = json.loads(outbound.read_capped(response, LLM_ANSWER_LIMIT))
        text = str(answer.get("response", "")).strip()
    except requests.Timeout:
        return "", f"language model timed out after {settings.ROOT_CAUSE_LLM_TIMEOUT_SECONDS:g}s"
    except (requests.RequestException, ssrf.ResolutionFailed, ValueError, AttributeError) as exc:
        return "", f"language model unavailable: {type(exc).__name__}"
    if not text:
        return "", "language model returned no text"
    return text[:4000], ""


def analyse(*, incident: Incident) -> dict[str, Any]:
    items = evidence_for(incident)
    summary = deterministic_summary(incident, items)
    source, error = "deterministic", ""
    if settings.ROOT_CAUSE_LLM_URL:
        text, error = llm_summary(build_prompt(incident, items))
        if text:
            summary, source = text, "llm"
        else:
            logger.warning("root-cause llm fallback", extra={"error": error})
    return {
        "incident": incident.pk,
        "summary": summary,
        "summary_source": source,
        "llm_error": error,
        "evidence": [e.__dict__ for e in items],
        "window": {
            "from": (incident.opened_at - BEFORE).isoformat(),
            "to": (incident.opened_at + AFTER).isoformat(),
            "changes_from": (incident.opened_at - CHANGES_BEFORE).isoformat(),
        },
    }
