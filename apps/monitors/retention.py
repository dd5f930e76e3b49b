"""Retention of raw results, heartbeat pings and metric samples, per plan.

On PostgreSQL the three tables are partitioned by day (apps.core.partitions), and retention is
two steps:

1. **The window drops whole days.** The longest retention any organization has (the
   enterprise plan's, say 730 days) is the window: a day partition that ended before
   `now - window` holds nothing anyone may keep, and goes with one `DROP TABLE` (a day of 144
   million results in milliseconds, no dead rows, no vacuum).
2. **A sweep for shorter plans.** Organizations whose retention is shorter than the window
   (free: 7 days) lose their older rows by a `DELETE` per partition restricted to their ids,
   through the (organization, time) index. Each partition is swept once per retention tier:
   when its day passes the tier's cutoff. A partition's dead rows are never written over again
   (old days get no inserts), so the space they take goes when the partition drops at the
   window; that is the price of sharing day partitions between plans, measured in
   benchmarks/partitions.py and docs/operations/retention.md.

An organization with unlimited retention (a custom plan without a limit) keeps every day, so
while one exists no partition is dropped, and everyone else is swept by rows.

On SQLite (the embedded default) the tables are plain, and both steps are bounded batches of
row deletes, as before.
"""

# SQL here names tables and columns from model metadata; values always go as parameters.
# ruff: noqa: S608

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db import OperationalError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from apps.core import partitions
from apps.monitors.models import CheckResult, HeartbeatPing, MetricSample

logger = logging.getLogger(__name__)

# Each partitioned model and its time column (the migration that partitions them says the same).
PARTITIONED = (
    (CheckResult, "checked_at"),
    (HeartbeatPing, "received_at"),
    (MetricSample, "ts"),
)
# Days of partitions kept made ahead of today: beat may stop for this long before rows start
# landing in the default partition (where they are still kept, and moved out later).
DAYS_AHEAD = 7


@dataclass
class RetentionPlan:
    """Organization ids by retention in days; `unlimited` ones keep everything."""

    by_days: dict[int, list] = field(default_factory=dict)
    unlimited: list = field(default_factory=list)

    @property
    def window_days(self) -> int | None:
        """The longest retention: days older than this go whole (None: never)."""
        if self.unlimited or not self.by_days:
            return None
        return max(self.by_days)


@dataclass
class PruneReport:
    dropped: list[str] = field(default_factory=list)
    rows_deleted: int = 0
    swept: int = 0  # partitions a shorter plan's sweep touched


def retention_plan(limit: str | None = None) -> RetentionPlan:
    """Organizations by the retention `limit` of their plan (results' by default; telemetry
    passes its log retention)."""
    from apps.plans.models import Limit
    from apps.plans.selectors import entitlements_for
    from apps.tenants.models import Organization

    by_days: dict[int, list] = defaultdict(list)
    unlimited = []
    for org in Organization.objects.select_related("plan"):
        days = entitlements_for(org).limit(limit or Limit.RETENTION_DAYS)
        if days is None:
            unlimited.append(org.pk)
        else:
            by_days[days].append(org.pk)
    return RetentionPlan(dict(by_days), unlimited)


def partitioned() -> bool:
    """The tables are partitioned (PostgreSQL after the partitioning migration)."""
    return all(
        partitions.is_partitioned(connection, model._meta.db_table) for model, _ in PARTITIONED
    )


def partitions_ensure(
    *, now: datetime | None = None, ahead: int = DAYS_AHEAD, tables: tuple = PARTITIONED
) -> list[str]:
    """Make the day partitions of yesterday through `ahead` days from now (beat, hourly) for
    each (model, time column) of `tables` (this app's by default; telemetry passes its own)."""
    if not partitions.supported(connection):
        return []
    today = (now or timezone.now()).astimezone(UTC).date()
    days = [today + timedelta(days=n) for n in range(-1, ahead + 1)]
    made = []
    for model, column in tables:
        with transaction.atomic():
            made += partitions.ensure(connection, model._meta.db_table, column, days)
    return made


def prune_results(
    *, now: datetime | None = None, batch: int = 10_000, max_batches: int = 100
) -> int:
    """Delete raw results, pings and samples older than each organization's plan retention;
    the number of rows deleted (partitions dropped count their rows only on PostgreSQL's
    estimate, so they are reported apart: see `prune_partitioned`)."""
    now = now or timezone.now()
    plan = retention_plan()
    if partitioned():
        return prune_partitioned(now=now, plan=plan).rows_deleted
    return _prune_rows(now=now, plan=plan, batch=batch, max_batches=max_batches)


def prune_partitioned(
    *,
    now: datetime,
    plan: RetentionPlan | None = None,
    full: bool | None = None,
    tables: tuple = PARTITIONED,
) -> PruneReport:
    """PostgreSQL: drop the days past the window, then sweep the shorter plans' rows.

    A partition is swept for a tier when its day crosses the tier's cutoff and on the
    `SWEEP_DAYS` days after (a missed run catches up); older ones were swept then. Once a
    week (`full`, by default on Sundays) every partition past each cutoff is swept, which
    catches organizations that moved to a plan with a shorter retention.
    """
    plan = plan or retention_plan()
    full = now.weekday() == 6 if full is None else full
    report = PruneReport()
    window = plan.window_days
    for model, column in tables:
        table = model._meta.db_table
        for part in partitions.partitions(connection, table):
            if window is not None and part.end <= now - timedelta(days=window):
                try:
                    with transaction.atomic():
                        partitions.drop(connection, part.name)
                except OperationalError:
                    # Its lock was not granted in time (a long read of the table): the day
                    # stays until tomorrow's run; the other days and sweeps go on.
                    logger.warning("partition not dropped", extra={"partition": part.name})
                    continue
                report.dropped.append(part.name)
                continue
            touched = False
            for days, org_ids in plan.by_days.items():
                if window is not None and days >= window:
                    continue
                cutoff = now - timedelta(days=days)
                if cutoff <= part.start or not (full or _recent(part.day, cutoff.date())):
                    continue
                report.rows_deleted += sweep_partition(
                    part.name, column, org_ids, None if cutoff >= part.end else cutoff
                )
                touched = True
            report.swept += touched
        # Rows the default partition caught (normally none) age out by rows.
        for days, org_ids in plan.by_days.items():
            report.rows_deleted += sweep_partition(
                partitions.default_name(table), column, org_ids, now - timedelta(days=days)
            )
    return report


SWEEP_DAYS = 3


def _recent(day: date, cutoff_day: date) -> bool:
    return (cutoff_day - day).days <= SWEEP_DAYS


def sweep_partition(name: str, column: str, org_ids: list, before: datetime | None) -> int:
    """Delete these organizations' rows of one partition (older than `before` if given)."""
    if not org_ids:
        return 0
    q = connection.ops.quote_name
    sql = f"DELETE FROM {q(name)} WHERE organization_id = ANY(%s)"
    params: list = [list(org_ids)]
    if before is not None:
        sql += f" AND {q(column)} < %s"
        params.append(before)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def prune_organization(*, org_id: object, days: int, now: datetime | None = None) -> int:
    """Delete one organization's rows older than `days` in every partition (or table), at
    once: for an organization that moved to a plan with a shorter retention and should not
    wait for the weekly full sweep."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=days)
    deleted = 0
    for model, column in PARTITIONED:
        deleted += model.objects.filter(
            organization_id=org_id, **{f"{column}__lt": cutoff}
        ).delete()[0]
    return deleted


def _prune_rows(*, now: datetime, plan: RetentionPlan, batch: int, max_batches: int) -> int:
    """Plain tables (SQLite): bounded batches keep each delete short so it never blocks
    inserts for long."""
    deleted = 0
    for days, org_ids in plan.by_days.items():
        cutoff = now - timedelta(days=days)
        for model, column in PARTITIONED:
            for _ in range(max_batches):
                ids = list(
                    model.objects.filter(
                        Q(organization_id__in=org_ids), **{f"{column}__lt": cutoff}
                    ).values_list("pk", flat=True)[:batch]
                )
                if not ids:
                    break
                deleted += model.objects.filter(pk__in=ids).delete()[0]
    return deleted
