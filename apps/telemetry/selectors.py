"""Reads for telemetry: log lines (filtered, searched, tailed), metric series and sources.

Error signatures (mined by apps.telemetry.mining) are read here by the report, the
error_signature alert rule and root cause.

Every read takes the organization and starts from it; another organization's lines and
samples are never in the answer.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Case, Max, QuerySet, Sum, When

from apps.monitors.models import MetricSample
from apps.telemetry.models import (
    ErrorSignature,
    ErrorSignatureHour,
    ErrorSignatureMinute,
    LogLine,
)
from apps.telemetry.storage import message_matches
from apps.tenants.models import Organization

#: points one series answer may hold; a longer range needs a larger step
MAX_POINTS = 2000


def log_list(
    *,
    org: Organization,
    source: str | None = None,
    levels: list[str] | None = None,
    q: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[LogLine]:
    """An organization's log lines, newest first, narrowed by each filter given."""
    lines = LogLine.objects.for_org(org)
    if source:
        lines = lines.filter(source=source)
    if levels:
        lines = lines.filter(level__in=levels)
    if since is not None:
        lines = lines.filter(ts__gte=since)
    if until is not None:
        lines = lines.filter(ts__lt=until)
    if q:
        lines = message_matches(lines, q)
    return lines.order_by("-ts", "-id")


def log_filters(cleaned: dict[str, Any]) -> dict[str, Any]:
    """`log_list`'s filters from a log filter form's cleaned data (the API's query string and
    the console's form name the same fields): a blank field narrows nothing."""
    return {
        "source": cleaned.get("source") or None,
        "levels": cleaned.get("level") or None,
        "q": cleaned.get("q") or None,
        "since": cleaned.get("since"),
        "until": cleaned.get("until"),
    }


def log_latest_id(*, org: Organization) -> int:
    """The highest line id of the organization (0 if none): where a live tail starts."""
    return LogLine.objects.for_org(org).aggregate(m=Max("id"))["m"] or 0


def log_after(lines: QuerySet[LogLine], *, after_id: int, limit: int) -> list[LogLine]:
    """Lines of a filtered list (from `log_list`) with an id past `after_id`, oldest first:
    the next batch of a live tail."""
    return list(lines.filter(id__gt=after_id).order_by("id")[:limit])


@dataclass(frozen=True)
class Point:
    t: datetime
    count: int
    avg: float
    min: float
    max: float
    p95: float


# Per step: count, average, minimum, maximum and the nearest-rank 95th percentile (the value at
# rank ceil(0.95 n) of the step's values). PostgreSQL's percentile_disc is exactly that (its
# float product 0.95 * n never rounds above the integer when 95 n / 100 is whole, and is far
# from one otherwise) and sorts each step once; SQLite has no ordered-set aggregate, so ranks
# come from window functions there. Only the table name is formatted into these.
_SERIES_SQL = {
    "postgresql": """
        SELECT bucket, COUNT(*), AVG(value), MIN(value), MAX(value),
               percentile_disc(0.95) WITHIN GROUP (ORDER BY value)
        FROM (
            SELECT CAST(floor(extract(epoch FROM ts)) AS bigint) / %s AS bucket, value
            FROM {table}
            WHERE organization_id = %s AND source = %s AND name = %s AND ts >= %s AND ts < %s
        ) AS samples
        GROUP BY bucket ORDER BY bucket
    """,
    "sqlite": """
        WITH samples AS (
            SELECT CAST(strftime('%%s', ts) AS INTEGER) / %s AS bucket, value
            FROM {table}
            WHERE organization_id = %s AND source = %s AND name = %s AND ts >= %s AND ts < %s
        ), ranked AS (
            SELECT bucket, value,
                   ROW_NUMBER() OVER (PARTITION BY bucket ORDER BY value) AS rn,
                   COUNT(*) OVER (PARTITION BY bucket) AS n
            FROM samples
        )
        SELECT bucket, COUNT(*), AVG(value), MIN(value), MAX(value),
               MAX(CASE WHEN rn = (95 * n + 99) / 100 THEN value END)
        FROM ranked GROUP BY bucket ORDER BY bucket
    """,
}


def metric_series(
    *,
    org: Organization,
    source: str,
    name: str,
    since: datetime,
    until: datetime,
    step: int,
) -> list[Point]:
    """One series downsampled into `step`-second buckets aligned to the epoch, in SQL: per
    bucket the count, average, minimum, maximum and 95th percentile (nearest rank, identical
    on both databases). Empty buckets are left out. One query, reading the (organization,
    source, name, ts) index."""
    sql = _SERIES_SQL[connection.vendor].format(table=MetricSample._meta.db_table)
    field = MetricSample._meta.get_field("ts")
    params = [
        step,
        MetricSample._meta.get_field("organization").get_db_prep_value(org.pk, connection),
        source,
        name,
        field.get_db_prep_value(since, connection),
        field.get_db_prep_value(until, connection),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        Point(
            t=datetime.fromtimestamp(bucket * step, tz=UTC),
            count=count,
            avg=avg,
            min=low,
            max=high,
            p95=p95,
        )
        for bucket, count, avg, low, high, p95 in rows
    ]


def metric_sources(*, org: Organization, since: datetime | None = None) -> list[dict]:
    """Each source with its metric names and when each was last sent, sorted by name: one
    grouped read of the (organization, source, name, ts) index."""
    samples = MetricSample.objects.for_org(org)
    if since is not None:
        samples = samples.filter(ts__gte=since)
    rows = (
        samples.order_by()
        .values_list("source", "name")
        .annotate(last_seen=Max("ts"))
        .order_by("source", "name")
    )
    sources: dict[str, list[dict]] = {}
    for source, name, last_seen in rows:
        sources.setdefault(source, []).append({"name": name, "last_seen": last_seen})
    return [
        {
            "source": source,
            "last_seen": max(m["last_seen"] for m in metrics),
            "metrics": metrics,
        }
        for source, metrics in sources.items()
    ]


# --- Error signatures (mined by apps.telemetry.mining) ---------------------------------------

#: a signature first seen this recently is "new" (the product has no deploy marker yet)
NEW_WITHIN = timedelta(hours=24)


def _hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def error_signature_report(
    *,
    org: Organization,
    since: datetime,
    until: datetime,
    now: datetime,
    source: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[dict], bool]:
    """The organization's signatures with lines in [since, until) (whole hours, by the lines'
    times), most lines first: counts, first and last seen, per-hour counts over the window, the
    count over the window before it and the change, and whether the signature is new (first
    seen in the last 24 h). Returns (page, more after it). Four queries, whatever the page."""
    start, previous = _hour(since), _hour(since) - (_hour(until) - _hour(since))
    hours = ErrorSignatureHour.objects.for_org(org).filter(hour__gte=start, hour__lt=until)
    if source:
        hours = hours.filter(signature__source=source)
    page = list(
        hours.order_by()
        .values("signature_id")
        .annotate(n=Sum("count"))
        .order_by("-n", "signature_id")
        .values_list("signature_id", "n")[offset : offset + limit + 1]
    )
    more = len(page) > limit
    page = page[:limit]
    ids = [pk for pk, _ in page]
    sigs = ErrorSignature.objects.for_org(org).in_bulk(ids)
    trend: dict[int, list[dict]] = defaultdict(list)
    for sig_id, hour, count in (
        ErrorSignatureHour.objects.for_org(org)
        .filter(signature_id__in=ids, hour__gte=start, hour__lt=until)
        .order_by("signature_id", "hour")
        .values_list("signature_id", "hour", "count")
    ):
        trend[sig_id].append({"hour": hour.isoformat(), "count": count})
    before = dict(
        ErrorSignatureHour.objects.for_org(org)
        .filter(signature_id__in=ids, hour__gte=previous, hour__lt=start)
        .order_by()
        .values("signature_id")
        .annotate(n=Sum("count"))
        .values_list("signature_id", "n")
    )
    out = []
    for sig_id, n in page:
        sig = sigs[sig_id]
        prior = before.get(sig_id, 0)
        out.append(
            {
                "id": sig.hash,
                "source": sig.source,
                "template": sig.template,
                "count": n,
                "total": sig.total,
                "first_seen": sig.first_seen.isoformat(),
                "last_seen": sig.last_seen.isoformat(),
                "hourly": trend[sig_id],
                "previous_count": prior,
                "change_pct": None if not prior else round(100 * (n - prior) / prior, 1),
                "new": sig.first_seen >= now - NEW_WITHIN,
            }
        )
    return out, more


def error_signatures_created(*, org_ids: Iterable[Any], since: datetime) -> list[ErrorSignature]:
    """Signatures mining made since `since` in these organizations (the rule's "new")."""
    return list(
        ErrorSignature.objects.filter(organization_id__in=list(org_ids), created_at__gte=since)
    )


def error_signature_recent_counts(*, org_ids: Iterable[Any], since: datetime) -> dict[Any, int]:
    """{signature id: lines since `since`} from the per-minute counts (at most two hours back),
    for the signatures with any: one grouped query."""
    return dict(
        ErrorSignatureMinute.objects.filter(organization_id__in=list(org_ids), minute__gte=since)
        .order_by()
        .values("signature_id")
        .annotate(n=Sum("count"))
        .values_list("signature_id", "n")
    )


def error_signature_hour_sums(
    *, signature_ids: Iterable[Any], since: datetime, until: datetime
) -> dict[Any, int]:
    """{signature id: lines in the hours starting in [since, until)}: one grouped query."""
    return dict(
        ErrorSignatureHour.objects.filter(
            signature_id__in=list(signature_ids), hour__gte=since, hour__lt=until
        )
        .order_by()
        .values("signature_id")
        .annotate(n=Sum("count"))
        .values_list("signature_id", "n")
    )


def error_signatures_by_id(ids: Iterable[Any]) -> dict[Any, ErrorSignature]:
    return ErrorSignature.objects.in_bulk(list(ids))


@dataclass(frozen=True)
class LogErrorEvidence:
    """What a source's error lines say about a time window (root cause's log evidence)."""

    source: str
    new_signatures: list[dict]
    window_per_hour: float
    day_before_per_hour: float


def log_error_evidence(
    *, org: Organization, source: str, start: datetime, end: datetime, top: int = 5
) -> LogErrorEvidence:
    """The signatures of `source` first seen in [start, end] (most lines first), and its error
    lines per hour in the hours overlapping the window against the 24 hours before them.
    Two queries."""
    fresh = [
        {
            "id": s.hash,
            "template": s.template,
            "first_seen": s.first_seen.isoformat(),
            "count": s.total,
        }
        for s in ErrorSignature.objects.for_org(org)
        .filter(source=source, first_seen__gte=start, first_seen__lte=end)
        .order_by("-total", "id")[:top]
    ]
    first_hour = _hour(start)
    last_hour = _hour(end)
    sums = dict(
        ErrorSignatureHour.objects.for_org(org)
        .filter(
            signature__source=source,
            hour__gte=first_hour - timedelta(hours=24),
            hour__lte=last_hour,
        )
        .annotate(is_window=Case(When(hour__gte=first_hour, then=True), default=False))
        .order_by()
        .values("is_window")
        .annotate(n=Sum("count"))
        .values_list("is_window", "n")
    )
    window_hours = (last_hour - first_hour).total_seconds() / 3600 + 1
    return LogErrorEvidence(
        source=source,
        new_signatures=fresh,
        window_per_hour=round((sums.get(True) or 0) / window_hours, 2),
        day_before_per_hour=round((sums.get(False) or 0) / 24, 2),
    )


def source_metrics(*, org: Organization, source: str) -> list[dict]:
    """One source's metric names with when each was last sent, sorted by name (empty if the
    organization has no such source): a grouped read of that source's part of the index."""
    rows = (
        MetricSample.objects.for_org(org)
        .filter(source=source)
        .order_by()
        .values_list("name")
        .annotate(last_seen=Max("ts"))
        .order_by("name")
    )
    return [{"name": name, "last_seen": last_seen} for name, last_seen in rows]


# --- The live tail (server-sent events), for the API and the console ------------------------


def log_tail_events(
    lines: Any, *, after: int, seconds: int, batch_size: int, data: Callable[[Any], str]
) -> Iterator[str]:
    """Poll for lines past `after` every TELEMETRY_TAIL_POLL_SECONDS until `seconds` are up,
    each line one `log` event whose data is `data(line)` (already one `data:` field's text).

    Time-limited on purpose: under gunicorn's sync workers each open tail holds one worker, so
    the stream ends and the browser's EventSource reconnects (with Last-Event-ID) instead.
    """
    deadline = time.monotonic() + seconds
    poll = settings.TELEMETRY_TAIL_POLL_SECONDS
    yield f"retry: {int(poll * 1000)}\n\n"
    while True:
        batch = log_after(lines, after_id=after, limit=batch_size)
        for line in batch:
            after = line.pk
            yield f"id: {line.pk}\nevent: log\ndata: {data(line)}\n\n"
        if time.monotonic() >= deadline:
            break
        if len(batch) < batch_size:
            if not batch:
                yield ": waiting\n\n"  # a comment: keeps proxies from closing an idle stream
            time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
    yield f"id: {after}\nevent: end\ndata: {json.dumps({'last_id': after})}\n\n"
