"""Writes for telemetry: log lines (our JSON and OTLP), OTLP metrics, and log retention.

Every write is all or nothing: a batch is stored and metered in one transaction, so a refused
batch (bad item, plan limit) leaves no row and no count behind.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.core import partitions
from apps.core.errors import FieldErrors
from apps.monitors.selectors import METRIC_SOURCE
from apps.monitors.services import (
    partitions_ensure,
    prune_partitioned,
    retention_plan,
    samples_store,
)
from apps.plans.models import Feature, Limit
from apps.plans.selectors import entitlements_for
from apps.plans.services import require_feature, reserve
from apps.telemetry import mining, otlp
from apps.telemetry.models import Level, LogLine
from apps.telemetry.storage import logs_write
from apps.tenants.models import Organization

MAX_LINES = 1000
MAX_BODY_BYTES = 1024 * 1024
MAX_MESSAGE_CHARS = otlp.MAX_MESSAGE_CHARS
MAX_ATTRIBUTES_BYTES = 8 * 1024
_FIELDS = {"ts", "source", "level", "message", "attributes"}


def parse_lines(payload: Any, *, now: datetime) -> list[tuple]:
    """Validate `{"logs": [...]}` into rows, or raise a 400 naming the item's index and field."""
    if not isinstance(payload, dict) or set(payload) != {"logs"}:
        raise FieldErrors({"non_field_errors": ['Send {"logs": [...]}.']})
    items = payload["logs"]
    if not isinstance(items, list) or not items:
        raise FieldErrors({"logs": ["A non-empty list of log lines."]})
    if len(items) > MAX_LINES:
        raise FieldErrors({"logs": [f"At most {MAX_LINES} per request."]})
    source_ok = METRIC_SOURCE.match
    rows = []
    for i, item in enumerate(items):
        where = f"logs[{i}]"
        if not isinstance(item, dict):
            raise FieldErrors({where: ["A log line is an object."]})
        unknown = set(item) - _FIELDS
        if unknown:
            raise FieldErrors({f"{where}.{sorted(unknown)[0]}": ["Unknown field."]})
        source = item.get("source")
        if not isinstance(source, str) or not source_ok(source):
            raise FieldErrors({f"{where}.source": ["Required; [A-Za-z0-9_.:-]{1,64}."]})
        level = item.get("level", Level.INFO)
        if level not in Level.values:
            raise FieldErrors({f"{where}.level": [f"One of {', '.join(Level.values)}."]})
        message = item.get("message")
        if not isinstance(message, str) or not message.strip():
            raise FieldErrors({f"{where}.message": ["Required text."]})
        if len(message) > MAX_MESSAGE_CHARS:
            raise FieldErrors({f"{where}.message": [f"At most {MAX_MESSAGE_CHARS} characters."]})
        attrs = item.get("attributes", {})
        if not isinstance(attrs, dict):
            raise FieldErrors({f"{where}.attributes": ["An object."]})
        if len(_json_size(attrs)) > MAX_ATTRIBUTES_BYTES:
            raise FieldErrors(
                {f"{where}.attributes": [f"At most {MAX_ATTRIBUTES_BYTES} bytes as JSON."]}
            )
        ts = now
        if "ts" in item:
            ts = parse_datetime(item["ts"]) if isinstance(item["ts"], str) else None
            if ts is None or ts.tzinfo is None:
                raise FieldErrors({f"{where}.ts": ["An ISO 8601 time with a zone."]})
            if ts > now + otlp.MAX_FUTURE:
                raise FieldErrors({f"{where}.ts": ["More than 5 minutes ahead."]})
        rows.append((ts, source, level, message, attrs, "", ""))
    return rows


def _json_size(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def logs_store(*, org: Organization, rows: Iterable[tuple]) -> int:
    """Store log rows (a list, or an iterator consumed while writing) and count them against
    the plan's monthly log lines in one increment, all or nothing (UpgradeRequired past the
    limit, nothing stored). Returns how many were stored."""
    if isinstance(rows, list) and not rows:
        return 0
    with transaction.atomic():
        stored = logs_write(org_id=org.pk, rows=rows)
        if stored:
            # Taken last: the organization's counter row stays locked only for the end of
            # the transaction, so concurrent batches of one organization overlap their writes.
            reserve(org=org, limit=Limit.LOG_LINES_PER_MONTH, amount=stored)
    return stored


def logs_ingest(*, org: Organization, payload: Any) -> int:
    """`POST /api/v1/logs`: validate the whole batch, then store it."""
    rows = parse_lines(payload, now=timezone.now())
    return logs_store(org=org, rows=rows)


def otlp_logs_ingest(*, org: Organization, request: Any) -> otlp.Decoded:
    """Store the records of an ExportLogsServiceRequest; returns what was stored and rejected."""
    decoded = otlp.Decoded()
    # Rows go to the database as they are decoded: the two overlap on a machine with cores.
    logs_store(org=org, rows=otlp.iter_log_rows(request, now=timezone.now(), out=decoded))
    return decoded


def otlp_metrics_ingest(*, org: Organization, request: Any) -> otlp.Decoded:
    """Store the points of an ExportMetricsServiceRequest as metric samples (monitors' table,
    so metric monitors see them), within the plan's monthly samples."""
    require_feature(org=org, feature=Feature.METRICS_INGESTION)
    now = timezone.now()
    decoded = otlp.metric_rows(request, now=now)
    samples_store(org=org, rows=decoded.rows, now=now)
    return decoded


#: the log table and its time column, partitioned by day on PostgreSQL (migration 0002)
PARTITIONED = ((LogLine, "ts"),)


def log_partitions_ensure(*, now: datetime | None = None) -> list[str]:
    """Make the log table's day partitions from yesterday to a week ahead (beat, hourly, and
    every `migrate`); nothing on SQLite. The names made."""
    return partitions_ensure(now=now, tables=PARTITIONED)


def logs_prune(*, now: datetime | None = None, batch: int = 10_000, max_batches: int = 100) -> int:
    """Delete log lines older than each organization's plan log retention. Returns how many
    rows were deleted (whole days dropped are not counted).

    PostgreSQL, partitioned: as results are (decision 0018), with the log retention limit:
    day partitions past the longest log retention are dropped whole, the shorter plans' rows
    swept out of the partitions that pass their cutoff. SQLite: bounded batches of deletes,
    so each delete is short.
    """
    now = now or timezone.now()
    if partitions.is_partitioned(connection, LogLine._meta.db_table):
        plan = retention_plan(Limit.LOG_RETENTION_DAYS)
        return prune_partitioned(now=now, plan=plan, tables=PARTITIONED).rows_deleted
    by_days: dict[int, list] = defaultdict(list)
    for org in Organization.objects.select_related("plan"):
        days = entitlements_for(org).limit(Limit.LOG_RETENTION_DAYS)
        if days is not None:
            by_days[days].append(org.pk)
    deleted = 0
    for days, org_ids in by_days.items():
        cutoff = now - timedelta(days=days)
        for _ in range(max_batches):
            ids = list(
                LogLine.objects.filter(organization_id__in=org_ids, ts__lt=cutoff).values_list(
                    "pk", flat=True
                )[:batch]
            )
            if not ids:
                break
            deleted += LogLine.objects.filter(pk__in=ids).delete()[0]
    return deleted


def error_signatures_mine(*, now: datetime | None = None) -> dict[str, int]:
    """Group new error lines into signatures (apps.telemetry.mining): the beat task's run."""
    return mining.signatures_mine(now=now)
