"""The engine end to end: real targets on 127.0.0.1, results in the database, state folded."""

import pytest
from rest_framework.exceptions import ValidationError

from apps.monitors import engine, services
from apps.monitors.configs import validate_config
from apps.monitors.models import CheckResult, Monitor, MonitorStatus
from apps.plans.models import UsageCounter, UsageMetric
from apps.plans.selectors import current_period
from apps.plans.services import organization_change_plan
from tests.factories import make_monitor
from tests.monitors import targets
from tests.support import wait_for

pytestmark = pytest.mark.django_db
http_target = targets.http_target
tcp_target = targets.tcp_target


def _http(org, url, **extra):
    return services.monitor_create(
        org=org,
        data={
            "name": extra.pop("name", "web"),
            "kind": "http",
            "timeout_seconds": 2,
            "config": {"url": url, **extra.pop("config", {})},
            **extra,
        },
    )


def test_a_batch_records_results_and_folds_status(org, http_target):
    good = _http(
        org,
        http_target.route("/ok", body="OK"),
        name="good",
        config={"assertions": ['body contains "OK"']},
    )
    bad = _http(org, http_target.route("/broken", status=503), name="bad")
    engine.run_monitors([good.pk, bad.pk])
    engine.run_monitors([good.pk, bad.pk])
    good.refresh_from_db()
    bad.refresh_from_db()
    assert good.status == MonitorStatus.UP
    assert (bad.status, bad.consecutive_failures) == (MonitorStatus.DOWN, 2)
    failure = CheckResult.objects.filter(monitor=bad).first()
    assert (failure.outcome, failure.status_code, failure.error_class) == ("down", 503, "status")
    assert failure.timings["total_ms"] > 0
    start, _ = current_period()
    usage = UsageCounter.objects.get(
        organization=org, period_start=start, metric=UsageMetric.CHECKS_EXECUTED
    )
    assert usage.value == 4


def test_one_failure_below_the_threshold_is_not_down(org, http_target):
    monitor = _http(org, http_target.route("/flaky", status=500))
    engine.run_monitors([monitor.pk])
    monitor.refresh_from_db()
    assert (monitor.status, monitor.consecutive_failures) == (MonitorStatus.UNKNOWN, 1)


def test_a_hanging_target_delays_nothing_but_itself(org, http_target):
    """Every fast target is answered while the hanging one is still being waited for: the
    batch's checks run side by side, none queued behind the hang (first in the batch, which
    is in name order)."""
    organization_change_plan(org=org, plan_code="pro", source="test")
    hang = _http(org, http_target.route("/hang", hang=True), name="a-hang", timeout_seconds=2)
    fast = [_http(org, http_target.route(f"/f{i}"), name=f"f{i}") for i in range(20)]
    results = engine.run_monitors([hang.pk] + [m.pk for m in fast])
    wait_for(lambda: ("gone", "/hang") in http_target.events, 10, "the hang's client to go")
    events = http_target.events
    gave_up = events.index(("gone", "/hang"))
    assert all(events.index(("answered", f"/f{i}")) < gave_up for i in range(20)), events
    by_monitor = {r.monitor_id: r for r in results}
    assert by_monitor[hang.pk].error_class == "timeout"
    assert all(by_monitor[m.pk].outcome == "up" for m in fast)


def test_a_slow_answer_is_degraded(org, http_target):
    monitor = _http(org, http_target.route("/slow", delay=0.2), expected_response_time_ms=50)
    engine.run_monitors([monitor.pk])
    monitor.refresh_from_db()
    assert monitor.status == MonitorStatus.DEGRADED


def test_recovery_needs_the_recovery_threshold(org, http_target):
    url = http_target.route("/svc", status=500)
    monitor = _http(org, url, failure_threshold=1, recovery_threshold=2)
    engine.run_monitors([monitor.pk])
    http_target.route("/svc", status=200)
    engine.run_monitors([monitor.pk])
    monitor.refresh_from_db()
    assert monitor.status == MonitorStatus.DOWN
    engine.run_monitors([monitor.pk])
    monitor.refresh_from_db()
    assert monitor.status == MonitorStatus.UP


def test_the_ssrf_guard_refuses_private_targets_at_save_and_at_check_time(
    org, settings, http_target
):
    url = http_target.route("/internal")
    monitor = _http(org, url)  # saved while private targets were allowed
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = False
    (result,) = engine.run_monitors([monitor.pk])
    assert result.error_class == "blocked"
    assert http_target.hits["/internal"] == 0
    with pytest.raises(ValidationError):
        validate_config("http", {"url": "http://169.254.169.254/latest/meta-data/"})


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://[::1]/",
        "http://169.254.169.254/",
        "http://localhost/",
        "http://0.0.0.0/",
        "http://[fe80::1]/",
        "http://100.64.0.1/",
    ],
)
def test_each_blocked_range_is_refused_at_save(client_for, member, settings, url):
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = False
    response = client_for(member).post(
        "/api/v1/monitors/", {"name": "x", "kind": "http", "config": {"url": url}}, format="json"
    )
    assert response.status_code == 400
    assert "Target refused" in str(response.json()["fields"]["config"])
    assert not Monitor.objects.exists()


def test_check_now_returns_the_result(client_for, member, org, http_target):
    monitor = _http(org, http_target.route("/now", body="hello"))
    response = client_for(member).post(f"/api/v1/monitors/{monitor.pk}/check/")
    assert response.status_code == 200
    assert (response.json()["outcome"], response.json()["status_code"]) == ("up", 200)


def test_results_are_cursor_paginated_newest_first(client_for, member, org, http_target):
    monitor = _http(org, http_target.route("/r"))
    for _ in range(5):
        engine.run_monitors([monitor.pk])
    client = client_for(member)
    page = client.get(f"/api/v1/monitors/{monitor.pk}/results/", {"page_size": 2}).json()
    assert len(page["results"]) == 2
    times = [r["checked_at"] for r in page["results"]]
    assert times == sorted(times, reverse=True)
    rest = client.get(page["next"]).json()
    assert len(rest["results"]) == 2
    assert rest["results"][0]["checked_at"] <= times[-1]
    bad = client.get(f"/api/v1/monitors/{monitor.pk}/results/", {"since": "yesterday"})
    assert bad.status_code == 400


def test_a_tcp_monitor(org, tcp_target):
    config = {"host": "127.0.0.1", "port": tcp_target.port}
    monitor = make_monitor(org, "port", config=config, failure_threshold=1)
    (result,) = engine.run_monitors([monitor.pk])
    assert result.outcome == "up"


def test_the_check_loop_keeps_the_process_out_of_the_collectors_walk(http_target):
    # A probe checker (a plugin kind registered for this test only) reports how many objects
    # the collector had set aside while the batch's checks were in flight, then does a real
    # HTTP check. The loop freezes what was alive when it started (Django, the checkers), so a
    # full collection in flight walks only what checks allocate; the collector stays on.
    import gc

    from apps.monitors.checkers.base import REGISTRY, CheckSpec
    from apps.monitors.checkloop import shared_loop

    seen: list[tuple[bool, int]] = []
    engine.run_batch([])  # nothing to run, nothing started
    shared_loop().start()
    http = REGISTRY["http"]

    async def probe(spec, ctx):
        seen.append((gc.isenabled(), gc.get_freeze_count()))
        return await http(spec, ctx)

    REGISTRY["gc-probe"] = probe
    url = http_target.route("/ok", body="OK")
    try:
        outcomes = engine.run_batch(
            [
                CheckSpec(
                    monitor_id=str(i),
                    kind="gc-probe",
                    timeout=2,
                    config={"url": url},
                    allow_private=True,
                )
                for i in range(3)
            ]
        )
    finally:
        del REGISTRY["gc-probe"]
    assert [enabled for enabled, _ in seen] == [True, True, True]
    assert all(frozen > 10_000 for _, frozen in seen), seen
    assert [o.outcome for o in outcomes] == ["up", "up", "up"]
