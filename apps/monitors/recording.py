"""Recording a batch of check outcomes: the result rows, the fold into status, usage.

One transaction per batch: the rows go in one INSERT from arrays, the monitors' new states in
one compare-and-set UPDATE (apps.monitors.state.fold_checked), usage in one upsert, the
listeners hear the batch once. The per-check costs are Python's, so this module keeps them
few: no ORM instance building on the way in beyond the rows the listeners are given.
"""

# SQL here is built from model metadata and placeholders; values always go as parameters.
# ruff: noqa: S608

from __future__ import annotations

from collections import Counter
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.core import copytext
from apps.monitors.checkers.base import CheckOutcome
from apps.monitors.models import CheckResult, Monitor
from healthorch import metrics

# What a result row keeps of a check's outcome: the columns the API shows after a result's id,
# time and region, in that order.
FINDINGS = (
    "outcome",
    "response_time_ms",
    "status_code",
    "error_class",
    "error_message",
    "timings",
    "assertion_failures",
    "cert_expires_at",
)
# Every column of a result row but its id, in the order of the COPY's lines (see _copy_text).
_COLUMNS = ("monitor_id", "organization_id", "checked_at", "region", "round_at", *FINDINGS)


def results_insert(rows: list[CheckResult]) -> None:
    """Insert result rows and set their ids: on PostgreSQL, ids drawn from the table's
    sequence in one statement, then the rows in one COPY.

    Django's bulk_create prepares every field of every row through the field classes, and an
    INSERT's parameters (a multi-row VALUES list, or one array per column) are adapted value
    by value by the driver: that adaptation was most of recording's Python. The columns here
    are known, so each row becomes one line of COPY text built with string operations
    (apps.core.copytext), and the ids are taken first so that the rows come back with them.
    """
    if not rows:
        return
    if connection.vendor != "postgresql":
        CheckResult.objects.bulk_create(rows, batch_size=1000)
        return
    table = CheckResult._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, len(rows)],
        )
        ids = [pk for (pk,) in cursor.fetchall()]
        with cursor.copy(f"COPY {table} (id, {', '.join(_COLUMNS)}) FROM STDIN") as copy:
            copy.write(_copy_text(rows, ids))
    for r, pk in zip(rows, ids, strict=True):
        r.pk = pk
        r._state.adding = False
        r._state.db = "default"


def _copy_text(rows: list[CheckResult], ids: list[int]) -> bytes:
    """The rows as COPY text, in the order of `_COLUMNS` after the id. Region, outcome and
    error class are product-made words that never hold a character COPY escapes; the error
    message and the JSON columns are escaped."""
    null = copytext.NULL
    escape = copytext.escape
    as_json = copytext.json_value
    lines = []
    append = lines.append
    for r, pk in zip(rows, ids, strict=True):
        append(
            f"{pk}\t{r.monitor_id}\t{r.organization_id}\t{r.checked_at.isoformat()}\t{r.region}\t"
            f"{null if r.round_at is None else r.round_at.isoformat()}\t{r.outcome}\t"
            f"{null if r.response_time_ms is None else repr(float(r.response_time_ms))}\t"
            f"{null if r.status_code is None else int(r.status_code)}\t{r.error_class}\t"
            f"{escape(r.error_message)}\t{as_json(r.timings)}\t{as_json(r.assertion_failures)}\t"
            f"{null if r.cert_expires_at is None else r.cert_expires_at.isoformat()}\n"
        )
    return "".join(lines).encode()


def _meter(monitors: list[Monitor], outcomes: list[CheckOutcome]) -> Counter:
    per_org: Counter = Counter()
    per_label: Counter = Counter()
    for m, o in zip(monitors, outcomes, strict=True):
        per_org[m.organization_id] += 1
        per_label[(m.kind, o.outcome)] += 1
        if o.response_time_ms is not None:
            metrics.monitor_check_duration_seconds.observe(o.response_time_ms / 1000)
    for (kind, outcome), n in per_label.items():
        metrics.monitor_checks_executed_total.labels(kind=kind, outcome=outcome).inc(n)
    return per_org


def _still_there(monitors: list[Monitor]) -> set:
    """The monitors of the batch that still exist, locked until the batch commits. On
    PostgreSQL `FOR NO KEY UPDATE`, in key order: the lock the fold's UPDATE would take
    anyway, taken first and in one order, so two batches holding the same monitors (the
    regions of one round reporting together) queue instead of deadlocking, and a DELETE
    waits for this commit and then takes the new results with it. A monitor deleted while
    its check ran is simply absent; without this, its result would fail the whole batch's
    commit on the foreign key. (A shared `FOR KEY SHARE` deadlocked the round fold's upgrade
    to `FOR UPDATE`.)"""
    ids = [m.pk for m in monitors]
    if connection.vendor != "postgresql":
        # SQLite has one writer at a time: nothing can delete between this and the commit.
        return set(Monitor.objects.filter(pk__in=ids).values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {Monitor._meta.db_table} WHERE id = ANY(%s) "
            "ORDER BY id FOR NO KEY UPDATE",
            [ids],
        )
        return {row[0] for row in cursor.fetchall()}


def results_record(
    *,
    monitors: list[Monitor],
    outcomes: list[CheckOutcome],
    region: str,
    checked_at: datetime | None = None,
    rounds: dict[str, str] | None = None,
) -> list[CheckResult]:
    """Insert the results, fold them into each monitor's status, meter usage: one transaction.

    `monitors` are the rows the batch loaded before checking; the fold writes each new state
    only where the row still holds what was loaded (compare-and-set) and folds the rest
    again under a lock. Results of a multi-region round are folded once, when its last
    region reports (apps.monitors.state.fold_rounds); everything else folds at once.
    """
    from apps.monitors.state import fold_checked, fold_rounds
    from apps.plans.models import UsageMetric
    from apps.plans.services import usage_add_many

    checked_at = checked_at or timezone.now()
    round_of: dict[str, datetime] = {}
    if rounds:
        round_of = {key: parse_datetime(value) for key, value in rounds.items()}
    rows = [
        CheckResult(
            monitor_id=m.pk,
            organization_id=m.organization_id,
            checked_at=checked_at,
            region=region,
            round_at=round_of.get(str(m.pk)) if round_of else None,
            outcome=o.outcome,
            response_time_ms=o.response_time_ms,
            status_code=o.status_code,
            error_class=o.error_class,
            error_message=o.error_message[:500],
            timings=o.timings,
            assertion_failures=o.assertion_failures,
            cert_expires_at=o.cert_expires_at,
        )
        for m, o in zip(monitors, outcomes, strict=True)
    ]
    with transaction.atomic():
        present = _still_there(monitors)
        if len(present) < len(monitors):
            kept = [i for i, m in enumerate(monitors) if m.pk in present]
            monitors = [monitors[i] for i in kept]
            outcomes = [outcomes[i] for i in kept]
            rows = [rows[i] for i in kept]
        per_org = _meter(monitors, outcomes)
        results_insert(rows)
        single = [(m, r) for m, r in zip(monitors, rows, strict=True) if r.round_at is None]
        if single:
            fold_checked(monitors=[m for m, _ in single], results=[r for _, r in single])
        fold_rounds(rows=[r for r in rows if r.round_at is not None])
        usage_add_many(counts=[(org, UsageMetric.CHECKS_EXECUTED, n) for org, n in per_org.items()])
    return rows
