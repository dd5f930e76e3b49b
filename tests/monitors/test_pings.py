"""The ping hot path (apps.monitors.pings, apps.monitors.wsgi) against the reference path.

Every ping goes through `ping_accept`: one statement when the status stays, the transactional
`heartbeats.ping_record` when it changes. These tests pin that the two agree, that listeners
still see real rows inside the transaction, and that the WSGI fast path answers as the view.
"""

import io
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from wsgiref.util import setup_testing_defaults

import pytest
from django.db import connection

from apps.monitors import events, heartbeats
from apps.monitors.models import HeartbeatPing, Monitor, MonitorStatus
from apps.monitors.pings import ping_accept
from healthorch.wsgi import application

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 1, 12, 0, 30, tzinfo=UTC)
FIELDS = [
    "status",
    "consecutive_failures",
    "consecutive_successes",
    "last_checked_at",
    "last_up_at",
    "status_changed_at",
    "last_ping_at",
    "last_start_at",
    "ping_window_count",
    "next_check_at",
]


def _heartbeat(org, **extra):
    config = extra.pop("config", {"period_seconds": 3600, "grace_seconds": 300})
    return Monitor.objects.create(
        organization=org,
        name="job",
        slug=f"job-{uuid.uuid4().hex[:8]}",
        kind="heartbeat",
        config=config,
        ping_token=uuid.uuid4(),
        **extra,
    )


def _state(monitor):
    monitor.refresh_from_db()
    pings = list(
        HeartbeatPing.objects.filter(monitor=monitor).values_list(
            "kind", "exit_code", "duration_ms", "body", "received_at"
        )
    )
    return {f: getattr(monitor, f) for f in FIELDS}, pings


ACTIONS = {"success": ("success", None), "fail": ("fail", None), "start": ("start", None)}
ACTIONS["exit 0"] = ("exit", 0)
ACTIONS["exit 3"] = ("exit", 3)


def test_the_one_statement_path_and_the_reference_path_agree(org):
    """Over a grid of states, thresholds and ping kinds, ping_accept (fast statement, or its
    fallback) leaves exactly what the reference path leaves."""
    cases = itertools.product(
        [MonitorStatus.UNKNOWN, MonitorStatus.UP, MonitorStatus.DOWN, MonitorStatus.MAINTENANCE],
        [(0, 0), (1, 0), (0, 1), (2, 0)],
        [(1, 1), (2, 2), (3, 1)],
        list(ACTIONS),
        [False, True],
    )
    checked = 0
    for status, (failures, successes), (fail_at, recover_at), action, paused in cases:
        start = NOW - timedelta(seconds=42)
        common = {
            "status": status,
            "consecutive_failures": failures,
            "consecutive_successes": successes,
            "failure_threshold": fail_at,
            "recovery_threshold": recover_at,
            "paused": paused,
            "last_start_at": start,
        }
        fast, reference = _heartbeat(org, **common), _heartbeat(org, **common)
        kind, code = ACTIONS[action]
        ping_accept(token=fast.ping_token, kind=kind, exit_code=code, body=b"out", now=NOW)
        heartbeats.ping_record(
            token=reference.ping_token, kind=kind, exit_code=code, body=b"out", now=NOW
        )
        case = f"{status} f={failures} s={successes} thresholds={fail_at}/{recover_at} {action} paused={paused}"
        assert _state(fast) == _state(reference), case
        checked += 1
    assert checked == 4 * 4 * 3 * 5 * 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement path")
def test_a_ping_that_keeps_the_status_is_one_statement(org, django_assert_num_queries):
    monitor = _heartbeat(org, status=MonitorStatus.UP)
    ping_accept(token=monitor.ping_token, kind="success", now=NOW)  # prepare
    with django_assert_num_queries(1):
        answer = ping_accept(token=monitor.ping_token, kind="success", now=NOW)
    assert answer.found
    assert not answer.limited
    monitor.refresh_from_db()
    assert monitor.consecutive_successes == 2
    assert monitor.next_check_at == NOW + timedelta(seconds=3900)


def test_status_changes_reach_the_listeners_inside_the_transaction(org):
    monitor = _heartbeat(org, status=MonitorStatus.UP, failure_threshold=2)
    heard = []

    def listener(*, monitor, old, new, result, at):
        heard.append((type(monitor), monitor.pk, old, new, at, connection.in_atomic_block))

    events.status_change.connect(listener)
    try:
        ping_accept(token=monitor.ping_token, kind="fail", now=NOW)  # 1 of 2: no change
        assert heard == []
        ping_accept(token=monitor.ping_token, kind="fail", now=NOW + timedelta(seconds=1))
        ping_accept(token=monitor.ping_token, kind="success", now=NOW + timedelta(seconds=2))
    finally:
        events.status_change.disconnect(listener)
    assert heard == [
        (Monitor, monitor.pk, "up", "down", NOW + timedelta(seconds=1), True),
        (Monitor, monitor.pk, "down", "up", NOW + timedelta(seconds=2), True),
    ]


def test_the_rate_limit_counts_per_monitor_and_minute(org):
    monitor, other = _heartbeat(org), _heartbeat(org)
    for _ in range(3):
        assert not ping_accept(token=monitor.ping_token, kind="success", now=NOW, limit=3).limited
    limited = ping_accept(token=monitor.ping_token, kind="success", now=NOW, limit=3)
    assert limited.found
    assert limited.retry_after == 30  # the window ends at 12:01:00
    assert HeartbeatPing.objects.filter(monitor=monitor).count() == 3  # nothing recorded
    assert not ping_accept(token=other.ping_token, kind="success", now=NOW, limit=3).limited
    next_minute = NOW + timedelta(seconds=31)
    assert not ping_accept(
        token=monitor.ping_token, kind="success", now=next_minute, limit=3
    ).limited


def test_cron_schedules_get_their_deadline_from_croniter(org):
    monitor = _heartbeat(
        org,
        status=MonitorStatus.UP,
        config={"schedule": "0 3 * * *", "timezone": "UTC", "grace_seconds": 600},
    )
    ping_accept(token=monitor.ping_token, kind="success", now=NOW)
    monitor.refresh_from_db()
    assert monitor.next_check_at == datetime(2026, 6, 2, 3, 10, tzinfo=UTC)


def test_unknown_tokens_and_nul_bytes_in_bodies(org):
    assert not ping_accept(token=uuid.uuid4(), kind="success", now=NOW).found
    monitor = _heartbeat(org)
    ping_accept(token=monitor.ping_token, kind="fail", body=b"exit\x00 1", now=NOW)
    assert HeartbeatPing.objects.get(monitor=monitor).body == "exit\ufffd 1"


# --- The WSGI fast path ------------------------------------------------------------------


@pytest.fixture
def wsgi_in_test_transaction():
    """Requests Django serves close the connection at their end (request_started/finished);
    inside a test's transaction that would end it, so, as Django's test client does, those
    handlers are off while we call the real WSGI application."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _call(path, method="GET", body=b"", **headers):
    environ = {"PATH_INFO": path, "REQUEST_METHOD": method, "HTTP_HOST": "127.0.0.1"}
    environ.update({f"HTTP_{k.upper()}": v for k, v in headers.items()})
    if body:
        environ["CONTENT_LENGTH"] = str(len(body))
        environ["CONTENT_TYPE"] = "text/plain"
    environ["wsgi.input"] = io.BytesIO(body)
    setup_testing_defaults(environ)
    seen = {}

    def start_response(status, response_headers, exc_info=None):
        seen["status"] = int(status.split()[0])
        seen["headers"] = dict(response_headers)

    content = b"".join(application(environ, start_response))
    return seen["status"], seen["headers"], content


def test_the_wsgi_fast_path_records_and_answers_like_the_view(org, wsgi_in_test_transaction):
    monitor = _heartbeat(org)
    status, headers, content = _call(f"/ping/{monitor.ping_token}", X_REQUEST_ID="job-42")
    assert (status, content) == (200, b"OK\n")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["X-Request-ID"] == "job-42"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    monitor.refresh_from_db()
    assert monitor.status == MonitorStatus.UP
    status, _, _ = _call(f"/ping/{monitor.ping_token}/start", method="POST")
    status, _, _ = _call(f"/ping/{monitor.ping_token}", method="POST", body=b"y" * 20_000)
    assert status == 200
    done = HeartbeatPing.objects.filter(monitor=monitor).order_by("-received_at").first()
    assert len(done.body) == 10 * 1024
    assert done.duration_ms is not None
    status, _, content = _call(f"/ping/{monitor.ping_token}/7", method="HEAD")
    assert (status, content) == (200, b"")
    assert HeartbeatPing.objects.filter(monitor=monitor, kind="fail", exit_code=7).exists()


def test_the_wsgi_fast_path_404_429_and_what_it_leaves_to_django(
    org, monkeypatch, wsgi_in_test_transaction
):
    monitor = _heartbeat(org)
    assert _call(f"/ping/{uuid.uuid4()}")[0] == 404
    assert _call(f"/ping/{monitor.ping_token}/explode")[0] == 404  # Django's view
    assert _call(f"/ping/{str(monitor.ping_token).upper()}")[0] == 404  # no route, as before
    assert _call(f"/ping/{monitor.ping_token}", method="PUT")[0] == 405  # the view's answer
    status, _, _ = _call(f"/ping/{monitor.ping_token}", HOST="evil.example")
    assert status == 400  # Django's ALLOWED_HOSTS answer
    monkeypatch.setattr(heartbeats, "PINGS_PER_MINUTE_PER_MONITOR", 2)
    codes = [_call(f"/ping/{monitor.ping_token}")[0] for _ in range(3)]
    assert codes[-1] == 429
    status, headers, _ = _call(f"/ping/{monitor.ping_token}")
    assert status == 429
    assert int(headers["Retry-After"]) > 0
