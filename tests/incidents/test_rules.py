"""Each alert rule, with its default and its per-organization setting."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from apps.incidents import sweeps
from apps.incidents.models import AlertRule, Incident, IncidentStatus, RuleKind
from apps.monitors import engine, rollups
from apps.monitors.checkers.base import CheckOutcome, ErrorClass, Outcome
from apps.monitors.models import MonitorStatus
from tests.factories import make_monitor
from tests.incidents.conftest import down, feed, notified, up
from tests.monitors import targets

pytestmark = pytest.mark.django_db
http_target = targets.http_target


def _rule(org, kind, **fields):
    from apps.incidents.rules import DEFAULTS

    d = DEFAULTS[kind]
    values = {
        "enabled": d.enabled,
        "threshold": d.threshold,
        "window_seconds": d.window_seconds,
        "severity": d.severity,
        **fields,
    }
    return AlertRule.objects.create(organization=org, kind=kind, **values)


def test_a_real_failing_http_check_opens_service_down_with_the_failing_result(
    org, http_target, published
):
    config = {"url": http_target.route("/broken", status=503)}
    monitor = make_monitor(
        org, "shop", kind="http", config=config, timeout_seconds=2, failure_threshold=2
    )
    engine.run_monitors([monitor.pk])
    engine.run_monitors([monitor.pk])
    incident = Incident.objects.get()
    assert (incident.rule, incident.cause["status_code"], incident.cause["error_class"]) == (
        "service_down",
        503,
        "status",
    )
    assert incident.cause["result_id"] == monitor.results.order_by("-checked_at", "-id").first().pk
    assert notified(published) == [("service_down", "opened")]


def test_service_down_can_be_turned_off(org):
    _rule(org, RuleKind.SERVICE_DOWN, enabled=False)
    feed(make_monitor(org), down(), down())
    assert not Incident.objects.exists()


def test_critical_service_down_falls_back_to_service_down_when_off(org):
    _rule(org, RuleKind.CRITICAL_SERVICE_DOWN, enabled=False)
    feed(make_monitor(org, critical=True), down(), down())
    assert Incident.objects.get().rule == RuleKind.SERVICE_DOWN


def test_consecutive_failures_warn_before_a_tolerant_monitor_is_down(org, published):
    monitor = make_monitor(org, failure_threshold=6)
    feed(monitor, down(), down())
    assert not Incident.objects.exists()
    feed(monitor, down())  # three in a row: the default threshold
    warning = Incident.objects.get()
    assert (warning.rule, warning.severity) == (RuleKind.CONSECUTIVE_FAILURES, "warning")
    assert warning.cause["failures"] == 3
    feed(monitor, down())
    warning.refresh_from_db()
    assert warning.occurrences == 2
    feed(monitor, up())
    warning.refresh_from_db()
    assert warning.status == IncidentStatus.RESOLVED
    assert notified(published) == [
        ("consecutive_failures", "opened"),
        ("consecutive_failures", "resolved"),
    ]


def test_the_warning_ends_with_the_next_success_even_without_a_status_change(org, published):
    monitor = make_monitor(org, failure_threshold=6)
    feed(monitor, up(), down(), down(), down())
    assert monitor.status == "up"  # below its own threshold the status never changed
    feed(monitor, up())
    assert Incident.objects.get().status == IncidentStatus.RESOLVED
    assert notified(published)[-1] == ("consecutive_failures", "resolved")


def test_the_warning_gives_way_quietly_when_the_monitor_goes_down(org, published):
    _rule(org, RuleKind.CONSECUTIVE_FAILURES, threshold=2)
    monitor = make_monitor(org, failure_threshold=4)
    feed(monitor, down(), down(), down(), down())
    warning = Incident.objects.get(rule=RuleKind.CONSECUTIVE_FAILURES)
    assert warning.status == IncidentStatus.RESOLVED
    assert Incident.objects.get(rule=RuleKind.SERVICE_DOWN).status == IncidentStatus.TRIGGERED
    assert notified(published) == [("consecutive_failures", "opened"), ("service_down", "opened")]


def _slow(ms):
    return CheckOutcome(Outcome.DEGRADED, response_time_ms=ms, error_class=ErrorClass.SLOW)


def test_high_response_time_means_over_twice_the_expected_time_by_default(org, published):
    monitor = make_monitor(org, expected_response_time_ms=100)
    feed(monitor, _slow(190))
    assert not Incident.objects.exists()
    feed(monitor, _slow(250))
    incident = Incident.objects.get()
    assert incident.rule == RuleKind.HIGH_RESPONSE_TIME
    assert incident.cause["limit_ms"] == 200
    assert incident.title == "api responds slowly (250 ms, over 200 ms)"
    feed(monitor, _slow(400))
    incident.refresh_from_db()
    assert incident.occurrences == 2
    # Fast again: the sweep resolves it from the latest result.
    later = timezone.now() + timedelta(seconds=30)
    feed(monitor, up(ms=40), at=later)
    assert sweeps.cleared_resolve(now=later) == 1
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    assert notified(published)[-1] == ("high_response_time", "resolved")


def test_the_response_time_factor_is_per_organization(org):
    _rule(org, RuleKind.HIGH_RESPONSE_TIME, threshold=1.5)
    feed(make_monitor(org, expected_response_time_ms=100), _slow(160))
    assert Incident.objects.get().rule == RuleKind.HIGH_RESPONSE_TIME


def test_a_certificate_inside_the_threshold_opens_certificate_expiry(org):
    now = timezone.now()
    monitor = make_monitor(org)
    feed(monitor, up(cert_expires_at=now + timedelta(days=30)))
    assert not Incident.objects.exists()
    feed(monitor, up(cert_expires_at=now + timedelta(days=10, hours=1)))
    incident = Incident.objects.get()
    assert incident.rule == RuleKind.CERTIFICATE_EXPIRY
    assert incident.title == "The certificate of api expires in 10 days"
    # Renewed: cleared on the next sweep.
    later = now + timedelta(minutes=1)
    feed(monitor, up(cert_expires_at=now + timedelta(days=90)), at=later)
    sweeps.cleared_resolve(now=later)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED


def test_low_uptime_from_hourly_rollups(org, published):
    monitor = make_monitor(org, failure_threshold=5)
    now = timezone.now().replace(minute=20, second=0, microsecond=0)
    hour = now.replace(minute=0) - timedelta(hours=1)
    # 18 up and 2 down in the last complete hour: 90% < 95%.
    for i in range(20):
        feed(monitor, down() if i in (3, 11) else up(), at=hour + timedelta(minutes=i * 2))
    rollups.rollup_hour(hour)
    assert sweeps.low_uptime_sweep(now=now) == {"opened": 1, "resolved": 0}
    incident = Incident.objects.get(rule=RuleKind.LOW_UPTIME)
    assert incident.cause["uptime_pct"] == 90.0
    assert sweeps.low_uptime_sweep(now=now) == {"opened": 0, "resolved": 0}  # grouped
    # A threshold of 85% and the same figures: resolved on the next sweep.
    _rule(org, RuleKind.LOW_UPTIME, threshold=85)
    assert sweeps.low_uptime_sweep(now=now) == {"opened": 0, "resolved": 1}
    assert notified(published)[-2:] == [("low_uptime", "opened"), ("low_uptime", "resolved")]


def test_low_uptime_leaves_out_checks_made_during_maintenance(org):
    from apps.incidents import services as incident_services

    monitor = make_monitor(org, failure_threshold=5)
    now = timezone.now().replace(minute=20, second=0, microsecond=0)
    hour = now.replace(minute=0) - timedelta(hours=1)
    # The same 18 up and 2 down as above, but both failures fall in a declared window.
    incident_services.window_create(
        org=org,
        data={
            "name": "db upgrade",
            "starts_at": hour,
            "ends_at": hour + timedelta(minutes=30),
            "monitors": [monitor.pk],
        },
    )
    for i in range(20):
        feed(monitor, down() if i in (3, 11) else up(), at=hour + timedelta(minutes=i * 2))
    rollups.rollup_hour(hour)
    sweeps.maintenance_sync(org_ids={org.pk})  # the window is over: out of maintenance
    monitor.refresh_from_db()
    assert monitor.status != MonitorStatus.MAINTENANCE

    assert sweeps.low_uptime_sweep(now=now) == {"opened": 0, "resolved": 0}
    assert not Incident.objects.filter(rule=RuleKind.LOW_UPTIME).exists()


def test_low_uptime_ignores_monitors_with_too_few_checks(org):
    monitor = make_monitor(org, failure_threshold=5)
    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    feed(monitor, down(), up(), at=hour + timedelta(minutes=5))
    rollups.rollup_hour(hour)
    assert sweeps.low_uptime_sweep(now=hour + timedelta(hours=1, minutes=10))["opened"] == 0


def test_service_recovery_off_means_recoveries_are_recorded_not_notified(org, published):
    _rule(org, RuleKind.SERVICE_RECOVERY, enabled=False)
    monitor = make_monitor(org)
    feed(monitor, down(), down(), up())
    assert Incident.objects.get().status == IncidentStatus.RESOLVED
    assert notified(published) == [("service_down", "opened")]
    assert published[-1].kind == "resolved"
    assert published[-1].data["recovery"] is True


def test_a_recovery_notice_carries_the_recovery_severity(org, published):
    feed(make_monitor(org), down(), down(), up())
    assert published[-1].data["severity"] == "info"


def test_heartbeat_monitors_open_incidents_when_overdue(org):
    from apps.monitors import heartbeats

    config = {"period_seconds": 60, "grace_seconds": 10}
    job = make_monitor(org, "backup", kind="heartbeat", config=config)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        heartbeats.ping_record(token=job.ping_token, kind="success")
    heartbeats.sweep_overdue(now=start + timedelta(minutes=5))
    assert Incident.objects.get().title == "backup is down"
    with time_machine.travel(start + timedelta(minutes=6), tick=False):
        heartbeats.ping_record(token=job.ping_token, kind="success")
    assert Incident.objects.get().status == IncidentStatus.RESOLVED
