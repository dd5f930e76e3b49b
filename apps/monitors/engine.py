"""The check engine: claim due monitors, run them concurrently, record and fold the results.

dispatch (beat, every few seconds) -> run_checks task per batch and region -> the process's
check loop (apps.monitors.checkloop) -> results_record (apps.monitors.recording: insert +
state fold). Costs are O(due monitors), never O(all monitors).
"""

from __future__ import annotations

import json
import logging
import operator
from collections.abc import Iterable
from contextlib import nullcontext
from datetime import datetime, timedelta
from typing import NamedTuple
from urllib.parse import quote, urlsplit, urlunsplit

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.core import crypto, queueing
from apps.core.pauses import gc_held
from apps.monitors import recording, watchdog
from apps.monitors.checkers.base import CheckOutcome, CheckSpec, Outcome
from apps.monitors.checkloop import LOOP_CONCURRENCY, shared_loop
from apps.monitors.checkproc import shared_process_loop
from apps.monitors.models import (
    ACTIVE_KINDS,  # noqa: F401 (callers read engine.ACTIVE_KINDS)
    CheckResult,
    Monitor,
    MonitorKind,
    MonitorSchedule,
    ScheduleLane,
)
from apps.monitors.secrets import secret_of
from healthorch import metrics

logger = logging.getLogger(__name__)

DISPATCH_BATCH = 5000  # monitors claimed per transaction
TASK_BATCH = 200  # monitors per run_checks task
# Checks in flight and start pacing are the check loop's, per process:
# apps/monitors/checkloop.py (LOOP_CONCURRENCY, LOOP_START_RATE_PER_SECOND).
MAX_CONCURRENCY = LOOP_CONCURRENCY


# --- Dispatch ---------------------------------------------------------------------------------


class Claimed(NamedTuple):
    # A tuple rather than a frozen dataclass: a claim builds 5,000 of these (~3x cheaper).
    monitor_id: str
    regions: list[str]
    lag_seconds: float
    # The claim's `now`, one object shared by the whole claim: the due time is derived from it
    # and the lag on demand (only multi-region monitors need it), so building a claim makes
    # no datetime per row.
    claimed_at: datetime | None = None
    # False when the monitor fell a whole interval behind (the dispatcher was stopped): its
    # missed checks are skipped and it was moved to its next slot in phase, not run now.
    run: bool = True

    @property
    def due_at(self) -> datetime | None:
        """The slot this claim was for (exact to the microsecond: the lag is whole µs)."""
        if self.claimed_at is None:
            return None
        return self.claimed_at - timedelta(seconds=self.lag_seconds)


_CLAIM_SQL = """
WITH due AS (
    SELECT ctid AS row_id, monitor_id, next_check_at AS due_at, interval_seconds, regions
    FROM monitors_monitorschedule
    WHERE lane = 'check' AND next_check_at <= %(now)s
    ORDER BY next_check_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE monitors_monitorschedule AS s
SET next_check_at = due.due_at + due.interval_seconds * (1 + floor(
    date_part('epoch', %(now)s - due.due_at) / due.interval_seconds
)) * interval '1 second'
FROM due
WHERE s.ctid = due.row_id
RETURNING s.monitor_id::text, due.regions::text,
    round(date_part('epoch', %(now)s - due.due_at) * 1000000)::bigint, due.interval_seconds
"""

# The locked rows are found again by their physical address (ctid), one heap fetch each,
# instead of a descent of the primary key's B-tree per row (20,000 buffer visits for 5,000
# rows). The address is stable: the rows are locked by this very statement, so nobody else
# can move them before the UPDATE (benchmarks/partitions.py compares both in one run).
# With fresh statistics that expect thousands of due rows, the planner prefers hashing the
# whole schedule table (a sequential scan: O(all monitors)) for the join back to the locked
# rows; a nested loop over the primary key keeps the claim O(due).
# The claim's commit does not wait for its WAL flush: if PostgreSQL crashed within the
# next ~0.6 s the advance would be lost, and those monitors would be due (and checked) once
# more, which is all a lost claim can do. The flush wait was 3-5 ms of a 5,000-row claim.
_CLAIM_PLANNER = "SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off"
_CLAIM_SETTINGS = _CLAIM_PLANNER + "; SET LOCAL synchronous_commit = off; "


def _claim_due_postgres(now: datetime, limit: int) -> list[Claimed]:
    # One statement on the narrow schedule table: select, lock and advance. The literal lane
    # lets the planner match the partial index `schedule_due` even with a generic plan.
    # The settings travel in the same round trip (client-side binding sends one query
    # string); the cursor starts on their results, so step on to the claim's rows.
    # Outside a transaction (the dispatcher's case) the query string is its own transaction:
    # PostgreSQL runs a multi-statement string as one implicit transaction block (SET LOCAL
    # included), so there is no BEGIN and no COMMIT round trip, each a wake-up of the other
    # process (2 of 3 round trips; milliseconds on a busy machine). Inside a caller's
    # transaction it runs in a savepoint as before.
    with (
        nullcontext() if _own_transaction() else transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(_CLAIM_SETTINGS + _CLAIM_SQL, {"now": now, "limit": limit})
        while cursor.description is None and cursor.nextset():
            pass
        rows = cursor.fetchall()
    # Ids as text and lags as whole microseconds: parsing 5,000 uuids and timestamptz texts
    # in Python cost ~50 ms of a claim, and numeric epoch arithmetic 8-10 % of the
    # statement's CPU (benchmarks/dispatch.py runs both). The due time is the claim's `now`
    # minus the lag, derived only when asked (Claimed.due_at). Oldest first, as claimed.
    rows.sort(key=_lag_of, reverse=True)
    # Nearly every monitor has one of a few region lists: decode each distinct text once.
    decoded: dict[str, list[str]] = {}
    claimed: list[Claimed] = []
    append = claimed.append
    for pk, regions, lag_us, interval in rows:
        listed = decoded.get(regions)
        if listed is None:
            listed = decoded[regions] = json.loads(regions) or list(_DEFAULT_REGIONS)
        lag = lag_us / 1e6
        append(Claimed(pk, listed.copy(), lag, now, lag < interval))
    return claimed


def _own_transaction() -> bool:
    """True when a statement sent now is its own transaction (autocommit, no atomic block)."""
    return connection.get_autocommit() and not connection.in_atomic_block


_lag_of = operator.itemgetter(2)
_DEFAULT_REGIONS = ("default",)


def _claim_due_orm(now: datetime, limit: int) -> list[tuple]:
    # SQLite (development): no SKIP LOCKED, and its writers serialize anyway.
    with transaction.atomic():
        due = list(
            MonitorSchedule.objects.filter(lane=ScheduleLane.CHECK, next_check_at__lte=now)
            .order_by("next_check_at")
            .select_for_update(skip_locked=True, of=("self",))[:limit]
        )
        if not due:
            return []
        claimed = [
            (row.monitor_id, row.regions, row.next_check_at, row.interval_seconds) for row in due
        ]
        for row in due:
            row.next_check_at = next_in_phase(row.next_check_at, row.interval_seconds, now)
        MonitorSchedule.objects.bulk_update(due, ["next_check_at"], batch_size=500)
    return claimed


def next_in_phase(due_at: datetime, interval_seconds: int, now: datetime) -> datetime:
    """The first of the monitor's slots (due_at + k intervals) after `now`.

    Kept in phase even after an outage: restarting every overdue monitor "from now" would put
    them all in the same tick for good (a herd that never disperses); keeping each one's slot
    keeps the spread they had. (The PostgreSQL claim computes the same in SQL.)
    """
    step = timedelta(seconds=interval_seconds)
    return due_at + step * (1 + int((now - due_at) / step))


def claim_due(*, now: datetime | None = None, limit: int = DISPATCH_BATCH) -> list[Claimed]:
    """Claim up to `limit` due monitors and move each to its next slot.

    `FOR UPDATE SKIP LOCKED` on the schedule rows makes concurrent dispatchers take disjoint
    sets, and advancing `next_check_at` in the same transaction means a monitor claimed by
    one is no longer due for any other: no monitor runs twice in one interval. The next check
    keeps the monitor's phase: its first slot (due time + k intervals) after now.

    A monitor less than an interval late is run now (`run`). One a whole interval or more
    behind (the dispatcher was stopped: beat, its worker or the database was down) is not:
    its missed checks are skipped and it runs at its next slot, within one interval. So after
    an outage the overdue checks are spread over the interval exactly as before it, instead of
    all landing in the first tick.

    The claim builds thousands of small objects while it holds row locks: a gen-2 collection
    in the middle (100+ ms in a busy process) would hold them that much longer, so the
    collector waits until the claim is done.
    """
    now = now or timezone.now()
    with gc_held():
        if connection.vendor == "postgresql":
            return _claim_due_postgres(now, limit)
        rows = _claim_due_orm(now, limit)
        return [
            Claimed(
                str(pk),
                list(regions or _DEFAULT_REGIONS),
                lag := (now - due).total_seconds(),
                now,
                lag < interval,
            )
            for pk, regions, due, interval in rows
        ]


def dispatch(*, now: datetime | None = None, max_rounds: int = 10) -> int:
    """Claim everything due (bounded rounds) and enqueue batches per region queue."""
    run_checks = queueing.task("apps.monitors.tasks.run_checks")  # named: tasks imports engine
    total = 0
    for _ in range(max_rounds):
        claimed = claim_due(now=now)
        if not claimed:
            break
        by_region: dict[str, list[str]] = {}
        rounds: dict[str, str] = {}
        skipped = 0
        for c in claimed:
            if not c.run:
                skipped += 1
                continue
            metrics.scheduler_lag_seconds.observe(max(0.0, c.lag_seconds))
            for region in c.regions:
                by_region.setdefault(region, []).append(c.monitor_id)
            if len(c.regions) > 1 and c.due_at is not None:
                rounds[c.monitor_id] = c.due_at.isoformat()
        for region, ids in by_region.items():
            for start in range(0, len(ids), TASK_BATCH):
                batch = ids[start : start + TASK_BATCH]
                batch_rounds = {i: rounds[i] for i in batch if i in rounds}
                run_checks.apply_async(
                    args=[batch, region, batch_rounds or None], queue=f"checks.{region}"
                )
        metrics.scheduler_jobs_scheduled_total.inc(len(claimed) - skipped)
        if skipped:
            metrics.scheduler_checks_skipped_total.inc(skipped)
            logger.warning(
                "dispatch was a whole interval behind: missed checks skipped, monitors kept in phase",
                extra={"skipped": skipped},
            )
        total += len(claimed) - skipped
        if len(claimed) < DISPATCH_BATCH:
            break
    metrics.scheduler_last_dispatch_timestamp_seconds.set_to_current_time()
    if total:
        logger.info("dispatched checks", extra={"count": total})
    return total


# --- Running ----------------------------------------------------------------------------------


def spec_for(monitor: Monitor) -> CheckSpec:
    config = dict(monitor.config)
    if monitor.secret and monitor.kind == MonitorKind.KUBERNETES:
        config["token"] = secret_of(monitor)
    elif monitor.secret:
        field = "dsn" if monitor.kind == MonitorKind.POSTGRES else "url"
        config[field] = _with_password(config[field], secret_of(monitor))
    return CheckSpec(
        monitor_id=str(monitor.pk),
        kind=monitor.kind,
        timeout=float(monitor.timeout_seconds),
        config=config,
        allow_private=settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS,
        expected_response_time_ms=monitor.expected_response_time_ms,
    )


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    user = parts.username or ""
    netloc = parts.netloc.split("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{quote(user)}:{quote(password, safe='')}@{netloc}"))


def run_monitors(
    monitor_ids: Iterable[str], *, region: str = "default", rounds: dict[str, str] | None = None
) -> list[CheckResult]:
    """Load, check and record a batch of monitors (the run_checks task's body).

    `rounds` maps multi-region monitors to the due time their regions' checks share.
    """
    monitors = list(
        Monitor.objects.filter(pk__in=list(monitor_ids), paused=False).select_related(None)
    )
    if not monitors:
        return []
    specs: list[CheckSpec] = []
    unreadable: dict[int, CheckOutcome] = {}
    for index, monitor in enumerate(monitors):
        try:
            specs.append(spec_for(monitor))
        except crypto.SecretUnavailable as exc:
            # The server lacks the key of this monitor's secret (a restore without its keys):
            # the target was not checked, so the result is inconclusive (no status change, no
            # page), carries the operator's fix, and the rest of the batch runs.
            logger.error(
                "monitor secret cannot be decrypted",
                extra={"monitor": str(monitor.pk), "key_id": exc.key_id, "setting": exc.setting},
            )
            unreadable[index] = CheckOutcome(
                Outcome.INCONCLUSIVE, error_class="internal", error_message=exc.detail[:500]
            )
    checked = iter(run_batch(specs) if specs else [])
    outcomes = watchdog.vet_failures(
        [unreadable[i] if i in unreadable else next(checked) for i in range(len(monitors))]
    )
    return results_record(monitors=monitors, outcomes=outcomes, region=region, rounds=rounds)


def run_batch(specs: list[CheckSpec]) -> list[CheckOutcome]:
    """Run the specs on this process's check loop and wait for their outcomes (in order).

    The loop is shared by every task of the process (apps.monitors.checkloop): its pace and
    its cap on checks in flight are the process's, whatever the number of batches at once.
    With HEALTHORCH_CHECK_PROCESS the loop runs in a child process of its own
    (apps.monitors.checkproc), so that recording never delays reading a response.
    """
    checks = shared_process_loop() if settings.HEALTHORCH_CHECK_PROCESS else shared_loop()
    return checks.run(specs, allow_private=settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS)


# The recording service lives in its own module; the task body and callers name it here.
results_record = recording.results_record
