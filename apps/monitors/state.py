"""Fold check outcomes into monitor status: the part of the state machine monitors own.

down after `failure_threshold` consecutive failures, up after `recovery_threshold` successes,
degraded for soft failures (slow, certificate expiring), inconclusive changes nothing. Every
change is sent on apps.monitors.events inside the same transaction (incidents open
and resolve there, so a status and its incident can never disagree).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from apps.core.db import bulk_update_values, json_rows
from apps.monitors import events
from apps.monitors.checkers.base import Outcome
from apps.monitors.models import CheckResult, Monitor, MonitorStatus


def next_status(monitor: Monitor, outcome: str) -> tuple[str, int, int]:
    """(status, consecutive_failures, consecutive_successes) after one more outcome."""
    status = monitor.status
    failures, successes = monitor.consecutive_failures, monitor.consecutive_successes
    if outcome == Outcome.INCONCLUSIVE:
        return status, failures, successes
    if outcome == Outcome.DOWN:
        failures, successes = failures + 1, 0
        if failures >= monitor.failure_threshold and status != MonitorStatus.MAINTENANCE:
            status = MonitorStatus.DOWN
        return status, failures, successes
    failures, successes = 0, successes + 1
    recovered = status != MonitorStatus.DOWN or successes >= monitor.recovery_threshold
    # A maintenance window (apps.incidents) holds the status; the counters keep counting.
    if recovered and status != MonitorStatus.MAINTENANCE:
        status = MonitorStatus.DEGRADED if outcome == Outcome.DEGRADED else MonitorStatus.UP
    return status, failures, successes


FOLDED_FIELDS = [
    "status",
    "consecutive_failures",
    "consecutive_successes",
    "last_checked_at",
    "last_up_at",
    "status_changed_at",
]


def apply_outcomes(monitor: Monitor, results: list) -> str | None:
    """Fold results (oldest first) into a monitor row held under lock, in memory.

    Returns the previous status if it changed, else None. The caller saves FOLDED_FIELDS and
    then calls `announce`.
    """
    old = monitor.status
    for result in results:
        monitor.status, monitor.consecutive_failures, monitor.consecutive_successes = next_status(
            monitor, result.outcome
        )
    last = results[-1]
    monitor.last_checked_at = last.checked_at
    if monitor.status in (MonitorStatus.UP, MonitorStatus.DEGRADED):
        monitor.last_up_at = last.checked_at
    if monitor.status == old:
        return None
    monitor.status_changed_at = last.checked_at
    return old


def announce(monitor: Monitor, old: str, result) -> None:
    """Tell the listeners (incidents) about a status change, inside the same transaction."""
    announce_many([(monitor, old, result)])


def announce_many(changes: list[tuple[Monitor, str, object]]) -> None:
    if events.status_change.listeners:
        for monitor, old, result in changes:
            events.status_change.send(
                monitor=monitor, old=old, new=monitor.status, result=result, at=result.checked_at
            )
    if changes:
        events.status_changes.send(changes=changes)


def fold_outcomes(*, monitors: list[Monitor], results: list[CheckResult]) -> list[Monitor]:
    """Apply a batch of results to its monitors; call inside the recording transaction.

    The rows are re-read under a lock (in primary-key order, so two batches touching the same
    monitors cannot deadlock): a region's results or a "check now" racing a scheduled run
    fold one after the other instead of overwriting each other's counters.
    """
    ordered: dict[object, list[CheckResult]] = {}
    for m, r in zip(monitors, results, strict=True):
        ordered.setdefault(m.pk, []).append(r)
    locked = list(
        Monitor.objects.filter(pk__in=list(ordered), paused=False)
        .order_by("pk")
        .select_for_update(of=("self",))
    )
    changed = []
    for monitor in locked:
        old = apply_outcomes(monitor, ordered[monitor.pk])
        if old is not None:
            changed.append((monitor, old, ordered[monitor.pk][-1]))
    bulk_update_values(Monitor, locked, FOLDED_FIELDS)
    announce_many(changed)
    announce_folded([(monitor, ordered[monitor.pk]) for monitor in locked])
    return locked


# The state a batch read before checking; a row still holding all of it was written by no
# one since (a fold, a pause, an edit saved through the services bump one of them).
_READ_STATE = ("status", "consecutive_failures", "consecutive_successes", "last_checked_at")


def fold_checked(*, monitors: list[Monitor], results: list[CheckResult]) -> list[Monitor]:
    """Apply a batch's results to the monitor rows the batch loaded; inside the recording
    transaction.

    The claim makes the batch the only writer of these monitors' status in the usual case,
    so instead of re-reading the rows under a lock (fold_outcomes), the new states go out in
    one `UPDATE ... FROM json_to_recordset(...)` that writes a row only if it still holds what the batch
    read (status, counters, last check, `updated_at`, not paused): a compare-and-set. A
    monitor some other writer touched meanwhile (a "check now" racing the scheduled run, a
    region's batch redelivered, a pause or an edit) fails the comparison and is folded again
    by fold_outcomes, under its lock, from the row as it is now; no result is lost or counted
    twice either way. Listeners hear each batch once (and the few re-folded monitors with
    their own fold). Other databases (the embedded SQLite: one writer at a time anyway) take
    fold_outcomes directly.
    """
    if connection.vendor != "postgresql":
        return fold_outcomes(monitors=monitors, results=results)
    ordered: dict[object, tuple[Monitor, list]] = {}
    for m, r in zip(monitors, results, strict=True):
        ordered.setdefault(m.pk, (m, []))[1].append(r)
    read = {pk: [getattr(m, f) for f in _READ_STATE] for pk, (m, _) in ordered.items()}
    changed = []
    for monitor, rs in ordered.values():
        old = apply_outcomes(monitor, rs)
        if old is not None:
            changed.append((monitor, old, rs[-1]))
    written = _compare_and_set(ordered, read)
    lost = [pk for pk in ordered if pk not in written]
    if lost:
        for pk in lost:  # back to what was read: that copy is stale, the lock re-reads it
            for field_name, value in zip(_READ_STATE, read[pk], strict=True):
                setattr(ordered[pk][0], field_name, value)
    kept = [ordered[pk] for pk in ordered if pk in written]
    announce_many([c for c in changed if c[0].pk in written])
    announce_folded(kept)
    if lost:
        again = [(ordered[pk][0], r) for pk in lost for r in ordered[pk][1]]
        return [m for m, _ in kept] + fold_outcomes(
            monitors=[m for m, _ in again], results=[r for _, r in again]
        )
    return [m for m, _ in kept]


def _compare_and_set(ordered: dict[object, tuple[Monitor, list]], read: dict) -> set:
    """One UPDATE of every monitor still as read; returns the primary keys it wrote.

    The rows come in primary-key order, so two batches sharing monitors take their row
    locks in the same order.
    """
    meta = Monitor._meta
    qn = connection.ops.quote_name
    new_columns = [meta.get_field(name) for name in FOLDED_FIELDS]
    old_columns = [meta.get_field(name) for name in (*_READ_STATE, "updated_at")]
    fields = [meta.pk, *new_columns, *old_columns]
    names = ["id"] + [f"new_{f.column}" for f in new_columns]
    names += [f"old_{f.column}" for f in old_columns]
    # The rows travel as one JSON parameter, typed by the column list of json_to_recordset:
    # one string for the driver to quote, where arrays of values were adapted one value at a
    # time (most of the fold's Python).
    columns = ", ".join(f"{n} {f.db_type(connection)}" for n, f in zip(names, fields, strict=True))
    rows = []
    for pk in sorted(ordered, key=str):
        monitor = ordered[pk][0]
        values = [pk, *(getattr(monitor, f.attname) for f in new_columns), *read[pk]]
        values.append(monitor.updated_at)
        rows.append(dict(zip(names, values, strict=True)))
    sets = ", ".join(f"{qn(f.column)} = v.new_{f.column}" for f in new_columns)
    same = " AND ".join(
        f"t.{qn(f.column)} IS NOT DISTINCT FROM v.old_{f.column}" for f in old_columns
    )
    # Identifiers come from model metadata, values travel as the parameter. json_to_recordset
    # keeps the rows' order, so the rows are locked in primary-key order.
    sql = (
        f"UPDATE {qn(meta.db_table)} AS t SET {sets} "  # noqa: S608
        f"FROM json_to_recordset(%s::json) AS v({columns}) "
        f"WHERE t.{qn(meta.pk.column)} = v.id AND NOT t.paused AND {same} "
        f"RETURNING t.{qn(meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [json_rows(rows)])
        return {pk for (pk,) in cursor.fetchall()}


def announce_folded(folded: list[tuple[Monitor, list]]) -> None:
    """Tell the fold listeners about results folded into these monitors (changed or not),
    inside the same transaction, after the status listeners."""
    if folded:
        events.fold.send(folded=folded)


@dataclass
class StatusSet:
    """The `result` of a status change that no check made (a pause, a resume): when."""

    checked_at: datetime


def announce_set(monitors: list[tuple[Monitor, str]], at: datetime) -> None:
    """Tell the listeners about statuses set by a person or a rule, not by a check (each
    monitor carries its new status; `str` is the old one), inside the same transaction, so
    they are rows of the monitor's history like any other change."""
    announce_many(
        [(monitor, old, StatusSet(at)) for monitor, old in monitors if old != monitor.status]
    )


@dataclass
class _RoundVerdict:
    outcome: str
    checked_at: datetime


def round_outcome(outcomes: list[str], quorum: int) -> str:
    """One verdict for a round: failing only when at least `quorum` regions failed, so one
    region's network trouble is not an outage; inconclusive regions don't count either way."""
    down = outcomes.count(Outcome.DOWN)
    if down >= quorum:
        return Outcome.DOWN
    if all(o == Outcome.INCONCLUSIVE for o in outcomes):
        return Outcome.INCONCLUSIVE
    return Outcome.DEGRADED if Outcome.DEGRADED in outcomes or down else Outcome.UP


def fold_rounds(*, rows: list[CheckResult]) -> None:
    """Fold each multi-region round once, when its last region's result arrives.

    Runs inside the recording transaction, after the insert: the monitor row is locked first,
    so of two regions finishing together the second sees the first one's committed result and
    only it folds the round (the first counts one of two and leaves it).
    """
    if not rows:
        return
    from apps.monitors.models import CheckResult as Result

    monitors = {
        m.pk: m
        for m in Monitor.objects.filter(pk__in={r.monitor_id for r in rows}, paused=False)
        .order_by("pk")
        .select_for_update(of=("self",))
    }
    verdicts: list[tuple[Monitor, _RoundVerdict]] = []
    for row in rows:
        monitor = monitors.get(row.monitor_id)
        if monitor is None:
            continue
        reported = list(
            Result.objects.filter(
                monitor_id=row.monitor_id, checked_at__gte=row.round_at, round_at=row.round_at
            ).values_list("region", "outcome")
        )
        by_region = dict(reported)
        if set(monitor.regions) - set(by_region):
            continue  # other regions still running
        if len(reported) != len(by_region):
            continue  # a region's batch ran twice (re-delivery): the round was folded already
        outcome = round_outcome([by_region[r] for r in monitor.regions], monitor.quorum)
        verdicts.append((monitor, _RoundVerdict(outcome, row.checked_at)))
    if verdicts:
        fold_outcomes(monitors=[m for m, _ in verdicts], results=[v for _, v in verdicts])
