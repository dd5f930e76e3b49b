"""Reads for telemetry: log lines (filtered, searched, tailed), metric series and sources.

Every read takes the organization and starts from it; another organization's lines and
samples are never in the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection
from django.db.models import Max, QuerySet

from apps.monitors.models import MetricSample
from apps.telemetry.models import LogLine
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
