"""SLA figures against fixtures computed by hand (the arithmetic is in each test's comments)."""

from __future__ import annotations

import random
import zoneinfo
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from apps.incidents.models import (
    Incident,
    IncidentStatus,
    MaintenanceWindow,
    MonitorDependency,
    Recurrence,
)
from apps.reports import selectors, sla
from apps.reports.models import ReportSettings
from apps.reports.periods import Period, parse_period
from tests.reports.support import hour_rollups, make_monitor, results, roll, status_change

pytestmark = pytest.mark.django_db
DAY = datetime(2026, 5, 4, tzinfo=UTC)
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def _report(org, monitors, start, end, *, now=None):
    period = Period("custom", start, end, "test")
    return selectors.sla_report(
        org=org, period=period, monitors=monitors, now=now or end + timedelta(days=1)
    )


def test_maintenance_in_the_middle_of_hours_is_left_out_by_default(pro_org):
    monitor = make_monitor(pro_org)
    # 10 hours of 1-minute checks. A window 03:30-05:15 (105 checks, all down) and a real
    # outage 08:00-08:29 (30 checks down).
    outcomes = ["up"] * 600
    for i in range(210, 315):
        outcomes[i] = "down"
    for i in range(480, 510):
        outcomes[i] = "down"
    results(monitor, DAY, outcomes)
    MaintenanceWindow.objects.create(
        organization=pro_org,
        name="db upgrade",
        recurrence=Recurrence.ONCE,
        starts_at=DAY + timedelta(hours=3, minutes=30),
        ends_at=DAY + timedelta(hours=5, minutes=15),
        all_monitors=True,
    )
    roll(DAY, DAY + timedelta(hours=10))

    row = _report(pro_org, [monitor], DAY, DAY + timedelta(hours=10))["monitors"][0]
    # 600 - 105 in maintenance = 495 counted, 30 down: 465 / 495.
    assert row["checks"]["counted"] == 495
    assert row["checks"]["in_maintenance"] == 105
    assert row["availability_pct"] == round(100 * 465 / 495, 4)
    assert row["maintenance_seconds"] == 105 * 60
    # observed = 10 h - 105 min = 29,700 s over 495 checks: 60 s each, 30 down.
    assert row["downtime_seconds"] == 1800.0

    ReportSettings.objects.create(organization=pro_org, exclude_maintenance=False)
    row = _report(pro_org, [monitor], DAY, DAY + timedelta(hours=10))["monitors"][0]
    assert row["checks"]["counted"] == 600
    assert row["availability_pct"] == round(100 * 465 / 600, 4)


def test_a_recurring_window_in_local_time_covers_the_right_utc_minutes(pro_org):
    monitor = make_monitor(pro_org, tags=["db"])
    results(monitor, DAY, ["down"] * 30 + ["up"] * 30)
    # Daily 02:00 Berlin (CEST, UTC+2 in May) for 30 minutes = 00:00-00:30 UTC, by tag.
    MaintenanceWindow.objects.create(
        organization=pro_org,
        name="nightly",
        recurrence=Recurrence.CRON,
        cron="0 2 * * *",
        duration_minutes=30,
        timezone="Europe/Berlin",
        tags=["db"],
    )
    roll(DAY, DAY + timedelta(hours=1))
    row = _report(pro_org, [monitor], DAY, DAY + timedelta(hours=1))["monitors"][0]
    assert row["checks"]["in_maintenance"] == 30
    assert row["availability_pct"] == 100.0


def test_a_monitor_created_mid_month_answers_only_from_its_first_check(pro_org):
    monitor = make_monitor(pro_org)
    first = datetime(2026, 4, 10, tzinfo=UTC)
    hours = {first + timedelta(hours=h): {"up": 60} for h in range(21 * 24)}
    hours[datetime(2026, 4, 15, 9, tzinfo=UTC)] = {"up": 0, "down": 60}
    hour_rollups(monitor, hours)
    period = parse_period(kind="monthly", start="2026-04", end=None, tz=zoneinfo.ZoneInfo("UTC"))
    report = selectors.sla_report(
        org=pro_org, period=period, monitors=[monitor], now=datetime(2026, 5, 2, tzinfo=UTC)
    )
    row = report["monitors"][0]
    assert row["measured_from"] == first.isoformat()
    assert row["availability_pct"] == round(100 * 503 / 504, 4)
    assert row["sla"]["met"] is True  # 99.80 >= 99.5
    # Budget over the 21 measured days: 0.5 % of 1,814,400 s = 9,072 s; 1/504 of the
    # observed 1,814,400 s (3,600 s) spent; 5,472 s (60.32 %) left.
    assert row["sla"]["error_budget"] == {
        "allowed_seconds": 9072.0,
        "consumed_seconds": 3600.0,
        "remaining_seconds": 5472.0,
        "remaining_pct": 60.32,
    }
    assert row["sla"]["violation_days"] == ["2026-04-15"]  # 23 / 24 hours that day
    assert row["sla"]["burn_rate_1h"] is None  # the period is over


def test_a_31_day_month_with_a_dst_change_is_743_local_hours(pro_org):
    ReportSettings.objects.create(organization=pro_org, timezone="Europe/Berlin")
    monitor = make_monitor(pro_org)
    # Berlin's March 2026: 2026-02-28 23:00 UTC to 2026-03-31 22:00 UTC (clocks go forward on
    # the 29th). Hours just outside it are down and must not count.
    begin, finish = datetime(2026, 2, 28, 23, tzinfo=UTC), datetime(2026, 3, 31, 22, tzinfo=UTC)
    hours = {}
    at = begin - timedelta(hours=3)
    while at < finish + timedelta(hours=3):
        hours[at] = {"up": 60} if begin <= at < finish else {"up": 0, "down": 60}
        at += timedelta(hours=1)
    hours[datetime(2026, 3, 29, 10, tzinfo=UTC)] = {"up": 30, "down": 30}
    hour_rollups(monitor, hours)
    from apps.monitors import rollups

    for d in range(1, 31):  # the whole UTC days inside are read from their daily rows
        rollups.rollup_day(datetime(2026, 3, d, tzinfo=UTC))
    period = parse_period(kind="monthly", start="2026-03-15", end=None, tz=BERLIN)
    assert (period.start, period.end, period.seconds) == (begin, finish, 743 * 3600)
    report = selectors.sla_report(
        org=pro_org, period=period, monitors=[monitor], now=datetime(2026, 4, 3, tzinfo=UTC)
    )
    row = report["monitors"][0]
    assert row["checks"]["counted"] == 743 * 60
    assert row["checks"]["unavailable"] == 30
    assert row["availability_pct"] == round(100 * (743 * 60 - 30) / (743 * 60), 4)
    # The 29th has 23 hours in Berlin: (23*60 - 30) / (23*60) = 97.8 % < 99.5 %.
    assert row["sla"]["violation_days"] == ["2026-03-29"]
    assert report["period"]["label"] == "March 2026"


def test_downtime_while_a_parent_was_down_is_reported_separately(pro_org):
    parent = make_monitor(pro_org, "database")
    child = make_monitor(pro_org, "api")
    MonitorDependency.objects.create(organization=pro_org, monitor=child, depends_on=parent)
    start = DAY + timedelta(hours=1)
    # The parent went down before the child's bad hour began (the status at the hour's start
    # comes from the log) and came back at 02:30.
    status_change(parent, start - timedelta(minutes=30), "unknown", "up")
    status_change(parent, start + timedelta(minutes=50), "up", "down")
    status_change(parent, start + timedelta(minutes=90), "down", "up")
    results(child, start, ["up"] * 60 + ["down"] * 60)
    roll(start, start + timedelta(hours=2))

    row = _report(pro_org, [child], start, start + timedelta(hours=2))["monitors"][0]
    assert row["checks"]["dependency_down"] == 30  # 02:00-02:29
    assert row["availability_pct"] == 50.0
    assert row["availability_excluding_dependencies_pct"] == 75.0
    assert row["downtime_seconds"] == 3600.0
    assert row["dependency_downtime_seconds"] == 1800.0


def test_percentiles_from_merged_histograms_are_within_two_percent_of_numpy(pro_org):
    monitor = make_monitor(pro_org)
    rng = random.Random(11)
    latencies = [rng.lognormvariate(4.5, 0.6) for _ in range(6 * 60 * 5)]
    # Five results a minute over six hours, spread across hourly (and merged) rollups.
    results(
        monitor,
        DAY,
        [("up", ms) for ms in latencies],
        step=timedelta(seconds=12),
    )
    roll(DAY, DAY + timedelta(hours=6))
    row = _report(pro_org, [monitor], DAY, DAY + timedelta(hours=6))["monitors"][0]
    raw = np.array(latencies)
    for q, key in ((50, "p50"), (95, "p95"), (99, "p99")):
        truth = float(np.percentile(raw, q, method="lower"))
        got = row["response_ms"][key]
        assert abs(got - truth) / truth <= 0.0199, (key, got, truth)
    assert row["response_ms"]["avg"] == pytest.approx(float(raw.mean()), abs=0.001)
    assert row["response_ms"]["max"] == pytest.approx(float(raw.max()), abs=0.001)


def test_mtta_mttr_false_positives_and_longest_outage(pro_org):
    monitor = make_monitor(pro_org)
    t = DAY

    def incident(opened, acked, resolved):
        Incident.objects.create(
            organization=pro_org,
            monitor=monitor,
            rule="service_down",
            title="down",
            severity="error",
            status=IncidentStatus.RESOLVED,
            opened_at=t + opened,
            last_seen_at=t + opened,
            acknowledged_at=t + acked if acked is not None else None,
            resolved_at=t + resolved,
        )

    m = timedelta(minutes=1)
    incident(0 * m, 5 * m, 20 * m)  # acked after 300 s, resolved after 1,200 s
    incident(60 * m, None, 61 * m)  # 60 s, never acked: a false positive
    incident(120 * m, None, 121 * m + timedelta(seconds=20))  # 80 s: a false positive
    incident(180 * m, 181 * m, 181 * m + timedelta(seconds=30))  # acked: not one
    status_change(monitor, t, "up", "down")
    status_change(monitor, t + 20 * m, "down", "up")
    status_change(monitor, t + 180 * m, "up", "down")  # still down at the period's end
    results(monitor, t, ["up"] * 10)
    roll(t, t + timedelta(hours=1))

    row = _report(pro_org, [monitor], t, t + timedelta(hours=4))["monitors"][0]
    inc = row["incidents"]
    assert inc["count"] == 4
    assert inc["mtta_seconds"] == 180.0  # (300 + 60) / 2
    assert inc["mttr_seconds"] == 357.5  # (1200 + 60 + 80 + 90) / 4
    assert inc["false_positives"] == 2
    assert inc["false_positive_rate_pct"] == 50.0
    assert "failure_threshold 3 (now 2)" in inc["tuning_hint"]
    assert inc["longest_outage_seconds"] == 3600.0  # 03:00 to the end, 04:00


def test_burn_rates_and_a_warning_when_the_budget_runs_out_before_month_end(pro_org):
    monitor = make_monitor(pro_org)
    month = datetime(2026, 5, 1, tzinfo=UTC)
    now = datetime(2026, 5, 20, 12, 30, tzinfo=UTC)
    hours = {month + timedelta(hours=h): {"up": 60} for h in range(19 * 24 + 12)}
    for h in range(6, 12):  # the last six complete hours: half down
        hours[datetime(2026, 5, 20, h, tzinfo=UTC)] = {"up": 30, "down": 30}
    hour_rollups(monitor, hours)
    results(monitor, datetime(2026, 5, 20, 12, tzinfo=UTC), ["down"] * 30)  # the live hour

    period = parse_period(
        kind="monthly", start=None, end=None, tz=zoneinfo.ZoneInfo("UTC"), now=now
    )
    row = selectors.sla_report(org=pro_org, period=period, monitors=[monitor], now=now)["monitors"][
        0
    ]
    # 1 h: hour 11 (30 of 60 down) + the live half hour (30 down): 60/90 over a 0.5 % budget.
    assert row["sla"]["burn_rate_1h"] == round((60 / 90) / 0.005, 3)
    # 6 h: 180 + 30 down of 360 + 30.
    assert row["sla"]["burn_rate_6h"] == round((210 / 390) / 0.005, 3)
    assert row["checks"]["counted"] == (19 * 24 + 12) * 60 + 30
    assert "before the period ends" in row["sla"]["warning"]


def test_degraded_can_count_as_down_and_inconclusive_never_counts(pro_org):
    monitor = make_monitor(pro_org)
    results(
        monitor,
        DAY,
        ["up"] * 50 + ["degraded"] * 5 + ["down"] * 3 + [("inconclusive", None, "dns")] * 2,
    )
    roll(DAY, DAY + timedelta(hours=1))
    row = _report(pro_org, [monitor], DAY, DAY + timedelta(hours=1))["monitors"][0]
    assert row["checks"]["counted"] == 58
    assert row["availability_pct"] == round(100 * 55 / 58, 4)
    assert row["error_rate_pct"] == round(100 * 5 / 60, 4)
    ReportSettings.objects.create(organization=pro_org, degraded_counts_as_up=False)
    row = _report(pro_org, [monitor], DAY, DAY + timedelta(hours=1))["monitors"][0]
    assert row["availability_pct"] == round(100 * 50 / 58, 4)


def test_the_organization_summary_averages_monitors_and_groups_by_first_tag(pro_org):
    a = make_monitor(pro_org, "a", tags=["web"])
    b = make_monitor(pro_org, "b", tags=["web", "eu"])
    c = make_monitor(pro_org, "c")
    results(a, DAY, ["up"] * 60)
    results(b, DAY, ["up"] * 30 + ["down"] * 30)
    results(c, DAY, ["up"] * 54 + ["down"] * 6)
    roll(DAY, DAY + timedelta(hours=1))
    report = _report(pro_org, [a, b, c], DAY, DAY + timedelta(hours=1))
    assert report["summary"]["availability_pct"] == round((100 + 50 + 90) / 3, 4)
    assert report["summary"]["sla"]["monitors_in_violation"] == 2
    assert [(g["name"], len(g["monitors"])) for g in report["groups"]] == [
        ("untagged", 1),
        ("web", 2),
    ]
    assert report["groups"][1]["summary"]["availability_pct"] == 75.0


def test_the_health_score_follows_the_documented_formula():
    # A = 1 - 0.25 / (10 x 0.5) = 0.95; L = 500 / 600; E = 1 - 0.25 / (2 x 0.5) = 0.75.
    score = sla.health_score(
        availability=99.75,
        target_pct=99.5,
        p95_ms=600,
        target_ms=500,
        error_rate=0.25,
        target_error_pct=0.5,
    )
    assert score == round(100 * (0.6 * 0.95 + 0.25 * 500 / 600 + 0.15 * 0.75))
    assert (
        sla.health_score(
            availability=None,
            target_pct=99.5,
            p95_ms=None,
            target_ms=500,
            error_rate=None,
            target_error_pct=0.5,
        )
        is None
    )
    perfect = sla.health_score(
        availability=100,
        target_pct=99.5,
        p95_ms=100,
        target_ms=500,
        error_rate=0,
        target_error_pct=0.5,
    )
    assert perfect == 100


def test_whole_days_come_from_daily_rollups_and_the_first_check_stays_exact(pro_org):
    from apps.monitors import rollups
    from apps.monitors.models import Granularity, ResultRollup

    monitor = make_monitor(pro_org)
    first = datetime(2026, 5, 4, 14, tzinfo=UTC)
    hours = {first + timedelta(hours=h): {"up": 60} for h in range(34)}  # to May 6th 00:00
    hours[datetime(2026, 5, 5, 3, tzinfo=UTC)] = {"up": 54, "down": 6}
    hour_rollups(monitor, hours)
    rollups.rollup_day(datetime(2026, 5, 4, tzinfo=UTC))
    rollups.rollup_day(datetime(2026, 5, 5, tzinfo=UTC))
    # The report must read May 5th from its daily row: its hours are gone.
    ResultRollup.objects.filter(
        granularity=Granularity.HOUR, bucket_start__gte=datetime(2026, 5, 5, tzinfo=UTC)
    ).delete()
    period = parse_period(kind="monthly", start="2026-05", end=None, tz=zoneinfo.ZoneInfo("UTC"))
    row = selectors.sla_report(
        org=pro_org, period=period, monitors=[monitor], now=datetime(2026, 6, 2, tzinfo=UTC)
    )["monitors"][0]
    assert row["measured_from"] == first.isoformat()
    assert row["checks"]["counted"] == 34 * 60
    assert row["availability_pct"] == round(100 * (34 * 60 - 6) / (34 * 60), 4)
    assert row["sla"]["violation_days"] == []  # 1434 / 1440 = 99.58 % on the 5th


def test_rolling_an_hour_up_again_replaces_its_error_groups(pro_org):
    from apps.monitors import rollups
    from apps.monitors.models import ErrorRollup

    monitor = make_monitor(pro_org)
    results(monitor, DAY, [("down", None, "timeout")] * 3 + [("down", None, "refused")])
    rollups.rollup_hour(DAY)
    results(monitor, DAY + timedelta(minutes=30), [("down", None, "timeout")])  # a late one
    rollups.rollup_hour(DAY)
    groups = {g.error_class: g for g in ErrorRollup.objects.filter(monitor=monitor)}
    assert {k: g.count for k, g in groups.items()} == {"timeout": 4, "refused": 1}
    assert groups["timeout"].first_seen == DAY
    assert groups["timeout"].last_seen == DAY + timedelta(minutes=30)
