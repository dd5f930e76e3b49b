"""The check engine: claim due monitors, run them concurrently, record and fold the results.

dispatch (beat, every few seconds) -> run_checks task per batch and region -> run_specs (asyncio)
-> results_record (bulk insert + state) . Costs are O(due monitors), never O(all monitors).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from urllib.parse import quote, urlsplit, urlunsplit

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.core import crypto, queueing
from apps.core.pauses import gc_held
from apps.monitors import watchdog
from apps.monitors.checkers.base import (
    REGISTRY,
    CheckOutcome,
    CheckSpec,
    ErrorClass,
    Outcome,
    RunContext,
)
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
MAX_CONCURRENCY = 200  # checks in flight per worker process
# Checks of a batch start at most this often (per second) instead of all at once: a burst of
# hundreds of simultaneous connects adds tens of ms to every measured latency on a small
# machine, while evenly paced starts add a few (+2.5 ms p95 at 1,000/s, +4 ms at
# 1,500/s). At 1,000/s a batch of 200 spent 0.2 s just starting, which capped one worker
# process near 540 checks/s (scheduler lag p95 > 1 s at 500/s offered); 1,500/s leaves slack
# (benchmarks/checks.py, 2026-12-06).
# Client and pacing figures: docs/decisions/0002-aiohttp-for-the-check-engine.md.
START_RATE_PER_SECOND = 1500.0


def _load_checkers() -> None:
    # Importing the modules registers their kinds.
    from apps.monitors.checkers import (  # noqa: F401
        dns,
        grpc,
        http,
        icmp,
        kubernetes,
        postgres,
        redis,
        smtp,
        tcp,
        tls,
    )


# --- Dispatch ---------------------------------------------------------------------------------


class Claimed(NamedTuple):
    # A tuple rather than a frozen dataclass: a claim builds 5,000 of these (~3x cheaper).
    monitor_id: str
    regions: list[str]
    lag_seconds: float
    due_at: datetime | None = None
    # False when the monitor fell a whole interval behind (the dispatcher was stopped): its
    # missed checks are skipped and it was moved to its next slot in phase, not run now.
    run: bool = True


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
SET next_check_at = due.due_at + due.interval_seconds * interval '1 second' * (1 + floor(
    extract(epoch FROM %(now)s - due.due_at) / due.interval_seconds
))
FROM due
WHERE s.ctid = due.row_id
RETURNING s.monitor_id::text, due.regions::text,
    (extract(epoch FROM due.due_at) * 1000000)::bigint, due.interval_seconds
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
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_CLAIM_SETTINGS + _CLAIM_SQL, {"now": now, "limit": limit})
        while cursor.description is None and cursor.nextset():
            pass
        rows = cursor.fetchall()
    # Ids as text, due times as epoch microseconds (exact): parsing 5,000 uuids and
    # timestamptz texts in Python cost ~50 ms of a claim (benchmarks/dispatch.py). The lag
    # is integer arithmetic on those microseconds (the same float timedelta.total_seconds()
    # gives), and the Claimed tuples are built in this one pass.
    rows.sort(key=_due_of)
    now_us = (now - _EPOCH) // _MICROSECOND
    # Nearly every monitor has one of a few region lists: decode each distinct text once.
    decoded: dict[str, list[str]] = {}
    claimed = []
    for pk, regions, due_us, interval in rows:
        lag = (now_us - due_us) / 1e6
        listed = decoded.get(regions) or decoded.setdefault(regions, json.loads(regions))
        claimed.append(
            Claimed(
                pk,
                list(listed or _DEFAULT_REGIONS),
                lag,
                _EPOCH + timedelta(microseconds=due_us),
                lag < interval,
            )
        )
    return claimed


def _due_of(row: tuple) -> int:
    return row[2]


_MICROSECOND = timedelta(microseconds=1)
_DEFAULT_REGIONS = ("default",)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
                list(regions or ["default"]),
                lag := (now - due).total_seconds(),
                due,
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


async def run_specs(
    specs: list[CheckSpec], *, concurrency: int = MAX_CONCURRENCY
) -> list[CheckOutcome]:
    """Run checks concurrently, at most `concurrency` in flight; order of results = of specs.

    Each check is bounded by its own timeout (plus a small grace for the checker to report),
    so a hanging target delays nothing but itself.
    """
    _load_checkers()
    from apps.monitors.checkers.http import make_session

    gate = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    first_start = loop.time()
    spacing = 1.0 / START_RATE_PER_SECOND
    session = make_session(
        allow_private=settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS, limit=concurrency
    )
    ctx = RunContext(http=session)

    async def one(index: int, spec: CheckSpec) -> CheckOutcome:
        wait = first_start + index * spacing - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        async with gate:
            checker = REGISTRY.get(spec.kind)
            if checker is None:
                return CheckOutcome(
                    Outcome.DOWN,
                    error_class=ErrorClass.PROTOCOL,
                    error_message=f"no checker for kind {spec.kind}",
                )
            try:
                async with asyncio.timeout(spec.timeout + 2):
                    return await checker(spec, ctx)
            except TimeoutError:
                return CheckOutcome(
                    Outcome.DOWN,
                    error_class=ErrorClass.TIMEOUT,
                    error_message=f"no answer within {spec.timeout:g}s",
                )
            except Exception as exc:  # a checker bug must not take the batch down
                logger.exception("checker crashed", extra={"monitor": spec.monitor_id})
                return CheckOutcome(
                    Outcome.DOWN,
                    error_class="internal",
                    error_message=f"{type(exc).__name__}: {exc}"[:500],
                )

    try:
        return await asyncio.gather(*(one(i, s) for i, s in enumerate(specs)))
    finally:
        await session.close()


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
    """run_specs in a fresh event loop, with Python's cyclic garbage collector held off.

    A full collection walks every object of the worker process (Django, Celery, ORM rows) and
    stops the event loop meanwhile, for tens of ms (up to ~270 ms measured); every response
    that arrives then is timed that much slower. In benchmarks/checks.py the gen-2
    collections took 4.3 s of a 40 s run. A batch is bounded (at most MAX_CONCURRENCY checks,
    each within its timeout), so is its garbage; it is collected as usual after the batch.
    """
    with gc_held():
        return asyncio.run(run_specs(specs))


# --- Recording --------------------------------------------------------------------------------


def results_record(
    *,
    monitors: list[Monitor],
    outcomes: list[CheckOutcome],
    region: str,
    checked_at: datetime | None = None,
    rounds: dict[str, str] | None = None,
) -> list[CheckResult]:
    """Bulk-insert the results, fold them into each monitor's status, meter usage.

    Results of a multi-region round are folded once, when its last region reports
    (apps.monitors.state.fold_rounds); everything else folds at once.
    """
    from apps.monitors.state import fold_outcomes, fold_rounds
    from apps.plans.models import UsageMetric
    from apps.plans.services import usage_add_many

    checked_at = checked_at or timezone.now()
    rows = [
        CheckResult(
            monitor_id=m.pk,
            organization_id=m.organization_id,
            checked_at=checked_at,
            region=region,
            round_at=parse_datetime(rounds[str(m.pk)]) if rounds and str(m.pk) in rounds else None,
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
    per_org: Counter = Counter()
    for m, o in zip(monitors, outcomes, strict=True):
        per_org[m.organization_id] += 1
        metrics.monitor_checks_executed_total.labels(kind=m.kind, outcome=o.outcome).inc()
        if o.response_time_ms is not None:
            metrics.monitor_check_duration_seconds.observe(o.response_time_ms / 1000)
    with transaction.atomic():
        # The monitors are locked (in key order, as the fold locks them) before their results
        # go in. One deleted while its check ran is left out: its result would fail the whole
        # batch's commit on the foreign key, losing every other monitor's result with it. One
        # being deleted now waits for this commit (monitor_delete locks the row first) and then
        # takes these results with it.
        present = set(
            Monitor.objects.filter(pk__in=[m.pk for m in monitors])
            .order_by("pk")
            .select_for_update(of=("self",))
            .values_list("pk", flat=True)
        )
        if len(present) < len(monitors):
            kept = [i for i, m in enumerate(monitors) if m.pk in present]
            monitors = [monitors[i] for i in kept]
            rows = [rows[i] for i in kept]
            per_org = Counter(m.organization_id for m in monitors)
        CheckResult.objects.bulk_create(rows, batch_size=1000)
        single = [(m, r) for m, r in zip(monitors, rows, strict=True) if r.round_at is None]
        if single:
            fold_outcomes(monitors=[m for m, _ in single], results=[r for _, r in single])
        fold_rounds(rows=[r for r in rows if r.round_at is not None])
        usage_add_many(counts=[(org, UsageMetric.CHECKS_EXECUTED, n) for org, n in per_org.items()])
    return rows
