"""An hour's rollups computed by the database in set-based statements.

`rollups.rollup_hour` used to fetch every raw result of the hour into Python and fold it row by
row: 30,000-45,000 rows/s here, ~35 s of every hour per million results. Here the database
does the counting in two statements, whatever the number of results:

1. `INSERT INTO resultrollup ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE`: results are
   grouped by (monitor, latency bucket) once, then by monitor, giving the counts per outcome,
   the latency sum/min/max, the histogram (as JSON) and the p50/p95/p99 buckets (a running
   sum over the buckets in order, the same rule as `rollups.percentile`); an existing hour is
   overwritten, so a re-run is idempotent.
2. The hour's error groups are replaced by one `INSERT ... SELECT ... GROUP BY`.

Only what needs each result's moment stays in Python: SLA accounting (maintenance windows,
parent dependencies down) for the few monitors the `hour_context` seam names, read back and
corrected in place. The bucket arithmetic is the histogram's (`ln(ms) / ln(1.04)`, floored),
so a histogram made here equals one made by `rollups.bucket_of`.

The same SQL serves PostgreSQL and SQLite (3.35+, with its math functions); the few spellings
that differ are chosen by vendor.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction

from apps.monitors import accounting, events
from apps.monitors.models import CheckResult, ErrorRollup, Granularity, ResultRollup

_SQL = """
WITH cells AS (
    SELECT monitor_id, organization_id,
        CASE WHEN outcome IN ('up', 'degraded') AND response_time_ms IS NOT NULL THEN
            CASE WHEN response_time_ms < 1 THEN 0
            ELSE CAST(floor(ln(response_time_ms) / {ln_base}) AS INTEGER) END
        END AS b,
        count(*) AS n,
        count(*) FILTER (WHERE outcome = 'up') AS n_up,
        count(*) FILTER (WHERE outcome = 'degraded') AS n_degraded,
        count(*) FILTER (WHERE outcome = 'down') AS n_down,
        count(*) FILTER (WHERE outcome = 'inconclusive') AS n_inconclusive,
        count(response_time_ms) FILTER (WHERE outcome IN ('up', 'degraded')) AS lat_n,
        sum(response_time_ms) FILTER (WHERE outcome IN ('up', 'degraded')) AS lat_sum,
        min(response_time_ms) FILTER (WHERE outcome IN ('up', 'degraded')) AS lat_min,
        max(response_time_ms) FILTER (WHERE outcome IN ('up', 'degraded')) AS lat_max
    FROM {results}
    WHERE checked_at >= %(start)s AND checked_at < %(end)s
    GROUP BY 1, 2, 3
),
ranked AS (
    SELECT cells.*,
        sum(CASE WHEN b IS NULL THEN 0 ELSE lat_n END)
            OVER (PARTITION BY monitor_id ORDER BY b) AS seen,
        sum(lat_n) OVER (PARTITION BY monitor_id) AS lat_total
    FROM cells
),
per_monitor AS (
    SELECT monitor_id, organization_id,
        sum(n) AS total, sum(n_up) AS up, sum(n_degraded) AS degraded, sum(n_down) AS down,
        sum(n_inconclusive) AS inconclusive, sum(lat_n) AS latency_count,
        coalesce(sum(lat_sum), 0) AS latency_sum_ms,
        min(lat_min) AS latency_min_ms, max(lat_max) AS latency_max_ms,
        min(b) FILTER (WHERE b IS NOT NULL AND seen > 0.5 * (lat_total - 1)) AS b50,
        min(b) FILTER (WHERE b IS NOT NULL AND seen > 0.95 * (lat_total - 1)) AS b95,
        min(b) FILTER (WHERE b IS NOT NULL AND seen > 0.99 * (lat_total - 1)) AS b99,
        {json_agg} FILTER (WHERE b IS NOT NULL) AS histogram
    FROM ranked
    GROUP BY 1, 2
)
INSERT INTO {rollups} (
    monitor_id, organization_id, granularity, bucket_start, total, up, degraded, down,
    inconclusive, latency_count, latency_sum_ms, latency_min_ms, latency_max_ms,
    p50_ms, p95_ms, p99_ms, histogram, maint_up, maint_degraded, maint_down,
    maint_inconclusive, dependency_down, maintenance_seconds
)
SELECT monitor_id, organization_id, 'hour', %(start)s, total, up, degraded, down,
    inconclusive, latency_count, latency_sum_ms, latency_min_ms, latency_max_ms,
    {value_of_b50}, {value_of_b95}, {value_of_b99}, coalesce(histogram, {empty_json}),
    0, 0, 0, 0, 0, 0
FROM per_monitor WHERE true
ON CONFLICT (monitor_id, granularity, bucket_start) DO UPDATE SET
    organization_id = excluded.organization_id, total = excluded.total, up = excluded.up,
    degraded = excluded.degraded, down = excluded.down, inconclusive = excluded.inconclusive,
    latency_count = excluded.latency_count, latency_sum_ms = excluded.latency_sum_ms,
    latency_min_ms = excluded.latency_min_ms, latency_max_ms = excluded.latency_max_ms,
    p50_ms = excluded.p50_ms, p95_ms = excluded.p95_ms, p99_ms = excluded.p99_ms,
    histogram = excluded.histogram, maint_up = 0, maint_degraded = 0, maint_down = 0,
    maint_inconclusive = 0, dependency_down = 0, maintenance_seconds = 0
RETURNING monitor_id
"""

_ERRORS_SQL = """
INSERT INTO {errors} (
    monitor_id, organization_id, bucket_start, outcome, error_class, message, count,
    first_seen, last_seen
)
SELECT monitor_id, organization_id, %(start)s, outcome, error_class,
    substr(error_message, 1, 200), count(*), min(checked_at), max(checked_at)
FROM {results}
WHERE checked_at >= %(start)s AND checked_at < %(end)s
    AND (outcome IN ('down', 'inconclusive') OR error_class <> '')
GROUP BY monitor_id, organization_id, outcome, error_class, substr(error_message, 1, 200)
"""


# The base as a float, not a numeric literal: PostgreSQL's numeric ln() and power() differ
# from the C library's in the last bit, which moves values on a bucket's edge (1.04 ** k).
_FLOAT = "double precision"


def _value_of(bucket: str, base: float) -> str:
    # A percentile is its bucket's geometric midpoint, rounded as rollups.percentile does.
    value = f"power(CAST({base!r} AS {_FLOAT}), {bucket} + 0.5)"
    if connection.vendor == "postgresql":
        return f"CAST(round(CAST({value} AS numeric), 3) AS double precision)"
    return f"round({value}, 3)"


def _statement(base: float) -> str:
    q = connection.ops.quote_name
    postgres = connection.vendor == "postgresql"
    return _SQL.format(
        results=q(CheckResult._meta.db_table),
        rollups=q(ResultRollup._meta.db_table),
        ln_base=f"ln(CAST({base!r} AS {_FLOAT}))",
        json_agg="jsonb_object_agg(CAST(b AS text), lat_n)"
        if postgres
        else "json_group_object(CAST(b AS TEXT), lat_n)",
        empty_json="'{}'::jsonb" if postgres else "'{}'",
        value_of_b50=_value_of("b50", base),
        value_of_b95=_value_of("b95", base),
        value_of_b99=_value_of("b99", base),
    )


# One hourly job's statement at a time: 100,000 monitors x ~15 latency buckets of cells.
WORK_MEM = "256MB"


def rollup_hour(hour_start: datetime, *, base: float) -> int:
    """(Re)compute the hourly rollups and error groups of the hour starting at `hour_start`
    (already truncated to the hour), with histogram buckets of ratio `base`. Idempotent; the
    number of monitors rolled up."""
    end = hour_start + timedelta(hours=1)
    ops = connection.ops
    params = {
        "start": ops.adapt_datetimefield_value(hour_start),
        "end": ops.adapt_datetimefield_value(end),
    }
    q = ops.quote_name
    to_pk = CheckResult._meta.get_field("monitor").target_field.to_python
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Compiling this statement's expressions (JIT) cost more than running them
            # (120-220 ms for an hour of 300,000 results); and with memory for a hash
            # table of the hour's (monitor, bucket) cells, the results are grouped as they
            # are read instead of sorted on disk first (benchmarks/partitions.py).
            cursor.execute(f"SET LOCAL jit = off; SET LOCAL work_mem = '{WORK_MEM}'")
        cursor.execute(_statement(base), params)
        monitor_ids = [to_pk(row[0]) for row in cursor.fetchall()]
        # Replace the hour's groups wholesale: a re-run (late results) must not double-count.
        ErrorRollup.objects.filter(bucket_start=hour_start).delete()
        cursor.execute(
            _ERRORS_SQL.format(
                errors=q(ErrorRollup._meta.db_table), results=q(CheckResult._meta.db_table)
            ),
            params,
        )
        _account(hour_start, end, monitor_ids)
    return len(monitor_ids)


def _account(start: datetime, end: datetime, monitor_ids: list) -> None:
    """SLA accounting for the monitors the hour context names (maintenance, parent down):
    their results' moments decide, so they are read back and counted here."""
    if not monitor_ids:
        return
    answers = events.hour_context.send(monitor_ids=monitor_ids, start=start, end=end)
    ctx = answers[0] if answers else accounting.HourContext()
    involved = set(ctx.maintenance) | set(ctx.parent_down)
    if not involved:
        return
    rows = {
        r.monitor_id: r
        for r in ResultRollup.objects.filter(
            granularity=Granularity.HOUR, bucket_start=start, monitor_id__in=involved
        )
    }
    results = CheckResult.objects.filter(
        checked_at__gte=start, checked_at__lt=end, monitor_id__in=list(rows)
    ).values_list("monitor_id", "outcome", "checked_at")
    for monitor_id, outcome, at in results.iterator(chunk_size=10_000):
        row = rows[monitor_id]
        if monitor_id in ctx.maintenance and ctx.in_maintenance(monitor_id, at):
            key = f"maint_{outcome}"
            if hasattr(row, key):
                setattr(row, key, getattr(row, key) + 1)
        elif outcome == "down" and ctx.parent_is_down(monitor_id, at):
            row.dependency_down += 1
    for monitor_id, row in rows.items():
        row.maintenance_seconds = ctx.maintenance_seconds(monitor_id)
    ResultRollup.objects.bulk_update(
        list(rows.values()),
        [
            "maint_up",
            "maint_degraded",
            "maint_down",
            "maint_inconclusive",
            "dependency_down",
            "maintenance_seconds",
        ],
        batch_size=1000,
    )
