"""The heartbeat ping's hot path: one SQL statement for the common case.

Every cron job of every customer pings, so a ping must cost about a millisecond. Most pings
change no status (a job that was up pings success again): for those, one statement locks the
monitor by its token, counts the ping in the monitor's rate-limit window, inserts the ping,
updates the monitor's counters and moves its deadline. It applies the ping only when the
state machine would leave the status as it is; a ping that would change it (a failure past
the threshold, a recovery), a failure of a monitor already down (its open incident counts
the occurrence, which needs the fold listeners), a cron-scheduled success (its deadline needs
croniter) or a limited one does nothing here and goes through `heartbeats.ping_record`, the
transactional reference path that folds through `state.apply_outcomes` and calls the status-change
listeners inside its transaction. So listeners always see a real Monitor row under lock.

The counters below mirror `state.next_status` for the two outcomes a ping can have (up and
down); tests/monitors/test_pings.py checks the two paths agree over a grid of states.
"""

from __future__ import annotations

import functools
import time
from datetime import datetime

import psycopg
from django.db import connection
from django.utils import timezone

from apps.monitors import heartbeats
from apps.monitors.heartbeats import (
    NOT_FOUND,
    RECORDED,
    PingAnswer,
    clean_body,
    ping_kind,
    ping_record,
    rate_window,
)
from apps.monitors.models import MonitorStatus

# The statuses appear as literals below; every value travels as a parameter.
assert (MonitorStatus.DOWN.value, MonitorStatus.UP.value) == ("down", "up")

_PING_SQL = """
WITH m AS (
    SELECT id, organization_id, status, consecutive_failures, consecutive_successes,
        failure_threshold, recovery_threshold, paused, last_start_at, config,
        interval_seconds, regions, ping_window_at, ping_window_count
    FROM monitors_monitor
    WHERE ping_token = %(token)s AND kind = 'heartbeat'
    FOR UPDATE
), v AS (
    SELECT m.*,
        m.ping_window_at IS NOT NULL AND m.ping_window_at = %(window)s
            AND m.ping_window_count >= %(limit)s AS limited,
        %(kind)s <> 'start' AND NOT m.paused AS folds,
        %(kind)s = 'success' AND NOT m.paused AS sets_deadline,
        NULLIF(m.config->>'schedule', '') IS NOT NULL AS cron
    FROM m
), n AS (
    SELECT v.*,
        CASE WHEN NOT v.folds THEN v.consecutive_failures
            WHEN %(kind)s = 'fail' THEN v.consecutive_failures + 1 ELSE 0 END AS failures,
        CASE WHEN NOT v.folds THEN v.consecutive_successes
            WHEN %(kind)s = 'fail' THEN 0 ELSE v.consecutive_successes + 1 END AS successes
    FROM v
), o AS (
    SELECT n.*,
        CASE WHEN NOT n.folds THEN n.status
            WHEN %(kind)s = 'fail' THEN
                CASE WHEN n.failures >= n.failure_threshold THEN 'down' ELSE n.status END
            WHEN n.status <> 'down' OR n.successes >= n.recovery_threshold THEN 'up'
            ELSE n.status
        END AS new_status
    FROM n
), go AS (
    SELECT * FROM o
    WHERE NOT o.limited AND o.new_status = o.status AND NOT (o.sets_deadline AND o.cron)
        AND NOT (o.folds AND %(kind)s = 'fail' AND o.status = 'down')
), p AS (
    INSERT INTO monitors_heartbeatping (monitor_id, organization_id, kind, exit_code,
        received_at, duration_ms, remote_addr, user_agent, body)
    SELECT go.id, go.organization_id, %(kind)s, %(exit_code)s, %(now)s,
        CASE WHEN %(kind)s <> 'start' AND go.last_start_at IS NOT NULL
            THEN EXTRACT(EPOCH FROM %(now)s - go.last_start_at) * 1000 END,
        %(remote_addr)s, %(user_agent)s, %(body)s
    FROM go
    RETURNING monitor_id
), u AS (
    UPDATE monitors_monitor AS t SET
        last_ping_at = %(now)s,
        last_start_at = CASE WHEN %(kind)s = 'start' THEN %(now)s END,
        ping_window_at = %(window)s,
        ping_window_count = CASE WHEN go.ping_window_at = %(window)s
            THEN go.ping_window_count + 1 ELSE 1 END,
        updated_at = %(now)s,
        consecutive_failures = go.failures,
        consecutive_successes = go.successes,
        last_checked_at = CASE WHEN go.folds THEN %(now)s ELSE t.last_checked_at END,
        last_up_at = CASE WHEN go.folds AND go.new_status = 'up' THEN %(now)s
            ELSE t.last_up_at END
    FROM go
    WHERE t.id = go.id
    RETURNING t.id
), d AS (
    INSERT INTO monitors_monitorschedule (monitor_id, lane, next_check_at, interval_seconds,
        regions)
    SELECT go.id, 'heartbeat', %(now)s + ((go.config->>'period_seconds')::float8
            + COALESCE((go.config->>'grace_seconds')::float8, 300)) * interval '1 second',
        go.interval_seconds, go.regions
    FROM go
    WHERE go.sets_deadline
    ON CONFLICT (monitor_id) DO UPDATE
        SET lane = EXCLUDED.lane, next_check_at = EXCLUDED.next_check_at
    RETURNING monitor_id
)
SELECT o.limited, (SELECT count(*) FROM p), (SELECT count(*) FROM u), (SELECT count(*) FROM d)
FROM o
"""


def _run_fast(params: dict) -> tuple | None:
    """Run the statement as a server-side prepared statement on Django's connection.

    Django binds parameters on the client and never prepares, so each ping would parse and
    plan this statement again (~0.7 ms of PostgreSQL CPU, plus the client-side quoting). A
    psycopg cursor of the same connection prepares it once per connection and reuses it; it
    shares Django's transaction state and error handling (wrap_database_errors), and shows in
    Django's query log and execute wrappers like any query (query-count tests see it).
    """
    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        # Django turns psycopg's statement preparation off (its cursors bind on the client
        # and never prepare anyway); a threshold no query reaches by repetition keeps it off
        # for everything but explicit `prepare=True`, i.e. this statement.
        raw.prepare_threshold = 2**31 - 1
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:

        def execute(sql, params, many, context):
            cursor.execute(sql, params, prepare=True)

        executor = execute
        for wrapper in reversed(connection.execute_wrappers):
            executor = functools.partial(wrapper, executor)
        started = time.monotonic()
        executor(_PING_SQL, params, False, {"connection": connection, "cursor": cursor})
        if connection.queries_logged:
            connection.queries_log.append(
                {"sql": _PING_SQL, "time": f"{time.monotonic() - started:.3f}"}
            )
        return cursor.fetchone()


def ping_accept(
    *,
    token: object,
    kind: str,
    exit_code: int | None = None,
    body: bytes = b"",
    remote_addr: str | None = None,
    user_agent: str = "",
    now: datetime | None = None,
    limit: int | None = None,
) -> PingAnswer:
    """Record one ping (see the module docstring); unknown tokens are NOT_FOUND. `limit`:
    pings per monitor and minute (heartbeats.PINGS_PER_MINUTE_PER_MONITOR)."""
    now = now or timezone.now()
    if limit is None:
        limit = heartbeats.PINGS_PER_MINUTE_PER_MONITOR
    final_kind = ping_kind(kind, exit_code)
    if connection.vendor == "postgresql":
        window, retry_after = rate_window(now)
        row = _run_fast(
            {
                "token": str(token),
                "kind": final_kind,
                "exit_code": exit_code,
                "now": now,
                "window": window,
                "limit": limit,
                "remote_addr": remote_addr,
                "user_agent": user_agent[:200],
                "body": clean_body(body),
            }
        )
        if row is None:
            return NOT_FOUND
        limited, inserted = row[0], row[1]
        if limited:
            return PingAnswer(found=True, retry_after=retry_after)
        if inserted:
            return RECORDED
    return ping_record(
        token=token,
        kind=kind,
        exit_code=exit_code,
        body=body,
        remote_addr=remote_addr,
        user_agent=user_agent,
        now=now,
        limit=limit,
    )
