import pytest

from apps.monitors import engine, services, watchdog
from apps.monitors.models import CheckResult, MonitorStatus
from tests.factories import make_monitor
from tests.monitors import targets

pytestmark = pytest.mark.django_db
http_target = targets.http_target


@pytest.fixture(autouse=True)
def _fresh_canary():
    watchdog.forget()
    yield
    watchdog.forget()


def _failing_monitor(org, http_target):
    config = {"url": http_target.route("/down", status=503)}
    return make_monitor(org, kind="http", config=config, failure_threshold=1)


def test_failures_are_inconclusive_when_the_canary_is_unreachable(org, settings, http_target):
    with targets.closed_port() as port:
        settings.HEALTHORCH_CANARY_URL = f"http://127.0.0.1:{port}/"
        monitor = _failing_monitor(org, http_target)
        (result,) = engine.run_monitors([monitor.pk])
    assert result.outcome == "inconclusive"
    assert "canary" in result.error_message
    monitor.refresh_from_db()
    assert monitor.status == MonitorStatus.UNKNOWN


def test_failures_count_when_the_canary_answers(org, settings, http_target):
    settings.HEALTHORCH_CANARY_URL = http_target.route("/canary")
    monitor = _failing_monitor(org, http_target)
    engine.run_monitors([monitor.pk])
    monitor.refresh_from_db()
    assert monitor.status == MonitorStatus.DOWN
    assert CheckResult.objects.get(monitor=monitor).outcome == "down"
    assert http_target.hits["/canary"] == 1


def test_the_canary_is_not_asked_when_nothing_failed(org, settings, http_target):
    settings.HEALTHORCH_CANARY_URL = http_target.route("/canary")
    monitor = services.monitor_create(
        org=org,
        data={
            "name": "ok",
            "kind": "http",
            "config": {"url": http_target.route("/ok")},
        },
    )
    engine.run_monitors([monitor.pk])
    assert http_target.hits["/canary"] == 0


def test_the_self_heartbeat_pings_the_configured_url(settings, http_target):
    settings.HEALTHORCH_SELF_HEARTBEAT_URL = http_target.route("/hb")
    assert watchdog.ping_self_heartbeat() is True
    assert http_target.hits["/hb"] == 1
    settings.HEALTHORCH_SELF_HEARTBEAT_URL = ""
    assert watchdog.ping_self_heartbeat() is False


def _due_since(org, seconds: float):
    from datetime import timedelta

    from django.utils import timezone

    from apps.monitors.models import MonitorSchedule

    monitor = services.monitor_create(
        org=org,
        data={
            "name": f"due {seconds}",
            "kind": "tcp",
            "interval_seconds": 3600,
            "config": {"host": "127.0.0.1", "port": 9},
        },
    )
    MonitorSchedule.objects.filter(monitor=monitor).update(
        next_check_at=timezone.now() - timedelta(seconds=seconds)
    )
    return monitor


@pytest.mark.parametrize(("waiting", "pinged"), [(None, 1), (5, 1), (45, 0)])
def test_the_self_heartbeat_goes_quiet_while_due_checks_wait_undispatched(
    org, settings, http_target, waiting, pinged
):
    """Beat still runs the heartbeat, but checks are not being dispatched: the outside
    heartbeat service must notice, so the ping is withheld."""
    settings.HEALTHORCH_SELF_HEARTBEAT_URL = http_target.route("/hb")
    if waiting is not None:
        _due_since(org, waiting)
    assert watchdog.ping_self_heartbeat() is bool(pinged)
    assert http_target.hits["/hb"] == pinged


def test_the_backlog_is_the_age_of_the_oldest_unclaimed_due_check(org):
    assert watchdog.dispatch_backlog_seconds() == 0.0
    _due_since(org, 12)
    _due_since(org, 40)
    assert watchdog.dispatch_backlog_seconds() == pytest.approx(40, abs=2)
    engine.claim_due()
    assert watchdog.dispatch_backlog_seconds() == 0.0
