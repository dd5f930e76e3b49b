"""The demo keeps the times its docs state.

The numbers are read from README.md and docs/getting-started.md (both must state each one, the
same), then checked against what the demo really does: the scenarios on a controlled clock,
the metric monitor fed the target's samples through the product's ingestion at controlled
times, the certificate through a real TLS check, the maintenance window through the product's
window arithmetic. Change a scenario or a sentence and the test names the drift.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from apps.console.demo import samples, setup
from apps.console.demo.scenarios import Scenarios, Script
from apps.console.demo.server import DemoTarget
from apps.incidents import windows
from apps.incidents.models import Incident, MaintenanceWindow
from apps.monitors import engine
from apps.monitors.ingest import samples_ingest
from apps.monitors.models import Monitor, MonitorStatus
from apps.monitors.services import monitor_create
from apps.plans.services import organization_change_plan

ROOT = Path(__file__).resolve().parents[2]
DOCS = {name: (ROOT / name).read_text() for name in ("README.md", "docs/getting-started.md")}
WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "ten": 10}


def stated(pattern: str) -> tuple[int, ...]:
    """The numbers `pattern` captures, the same in every doc (words or digits)."""
    found = {}
    for name, text in DOCS.items():
        match = re.search(pattern, " ".join(text.split()))
        assert match, f"{name} no longer states /{pattern}/"
        found[name] = tuple(int(WORDS.get(g, g)) for g in match.groups())
    assert len(set(found.values())) == 1, f"the docs disagree on /{pattern}/: {found}"
    return next(iter(found.values()))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_payments_is_down_for_the_stated_minutes_of_every_period():
    down_min, period_min = stated(
        r"`payments \(recovering\)`\W+goes down for (\w+) minutes of every (\w+) unless restarted"
    )
    clock = Clock()
    scenarios = Scenarios(script=Script(), clock=clock)
    start = clock.now
    # Probe every second over two periods: when does it answer 503?
    down_seconds = []
    for t in range(2 * period_min * 60):
        clock.now = start + t
        if scenarios.answer("recovering").status == 503:
            down_seconds.append(t)
    first = [t for t in down_seconds if t < period_min * 60]
    assert first == list(range(down_min * 60))
    assert [t - period_min * 60 for t in down_seconds if t >= period_min * 60] == first


def test_the_payments_incident_lasts_the_stated_verification_delay_once_healed():
    (verify_s,) = stated(r"its check (\d+) s later finds payments up")
    assert verify_s == setup.VERIFY_AFTER_SECONDS
    spec = next(
        s
        for s in setup.demo_target_monitor_specs(port=1, tls_port=None, ca_pem="")
        if s["name"] == setup.HEALED_MONITOR
    )
    assert spec["failure_threshold"] == 1  # "opens at the first failed check"
    policy = setup.demo_loop_specs(port=1, secret="s" * 20)["healing"]
    assert policy["verify_after_seconds"] == verify_s
    assert policy["action_config"]["url"].endswith(f"/restart/{setup.HEALED_SCENARIO}")
    # The cooldown lets the next period's incident be healed too.
    assert policy["cooldown_minutes"] * 60 < Script().recovering_period_s

    clock = Clock()
    for opened_at in (0, 17, 59, 119, 300, 361):  # any time in a down phase, any period
        scenarios = Scenarios(script=Script(), clock=clock)
        clock.now = scenarios.started + opened_at
        assert scenarios.answer(setup.HEALED_SCENARIO).status == 503  # the failed check
        scenarios.restart(setup.HEALED_SCENARIO)  # healing acts at once
        clock.now += verify_s
        assert scenarios.answer(setup.HEALED_SCENARIO).status == 200  # the verification
    # Without a restart the same check would still fail: healing, not the script, ended it.
    fresh = Scenarios(script=Script(), clock=clock)
    clock.now = fresh.started + 17 + verify_s
    assert fresh.answer(setup.HEALED_SCENARIO).status == 503


@pytest.mark.django_db
def test_host_cpu_spikes_and_is_down_for_the_stated_seconds(org):
    spike_s, every_min = stated(r"cpu is above 90 % for (\d+) s of every (\w+) minutes")
    (first_s,) = stated(r"the first time (\d+) s after the start")
    (down_s,) = stated(r"the monitor waits \d+ s, so it is down for (\d+) s")
    (wait_s,) = stated(r"the monitor waits (\d+) s")
    organization_change_plan(org=org, plan_code="pro", source="test", reason="demo")
    spec = next(
        s
        for s in setup.demo_target_monitor_specs(port=1, tls_port=None, ca_pem="")
        if s["name"] == "host cpu"
    )
    assert spec["config"]["for_seconds"] == wait_s
    monitor = monitor_create(org=org, data=spec)
    start = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    per_period = int(every_min * 60 / samples.INTERVAL_S)
    above, changes = [], []
    # The samples the target pushes, sent at start + k * interval, through the product.
    for k in range(2 * per_period):
        at = start + timedelta(seconds=k * samples.INTERVAL_S)
        sample = samples.sample(7, k)
        if sample["cpu"] > 90:
            above.append(k * samples.INTERVAL_S)
        with time_machine.travel(at, tick=False):
            samples_ingest(
                org=org,
                payload={"source": "demo-target", "metrics": sample, "ts": at.isoformat()},
            )
        status = Monitor.objects.get(pk=monitor.pk).status
        if not changes or changes[-1][1] != status:
            changes.append((k * samples.INTERVAL_S, status))
    assert above[0] == first_s
    spikes = [t for t in above if t < every_min * 60]
    assert spikes == [first_s + i * samples.INTERVAL_S for i in range(len(spikes))]
    assert len(spikes) * samples.INTERVAL_S == spike_s
    assert [t - every_min * 60 for t in above if t >= every_min * 60] == spikes  # it recurs
    went_down = [t for t, s in changes if s == MonitorStatus.DOWN]
    came_up = [t for t, s in changes if s == MonitorStatus.UP and went_down and t > went_down[0]]
    assert came_up[0] - went_down[0] == down_s
    incidents = Incident.objects.filter(monitor=monitor).order_by("opened_at")
    assert [(i.resolved_at - i.opened_at).total_seconds() for i in incidents] == [down_s] * 2


@pytest.mark.django_db
def test_the_certificate_incident_says_the_stated_days(org, tmp_path):
    (days,) = stated(r"`shop certificate` \(expires in (\d+) days\)")
    organization_change_plan(org=org, plan_code="pro", source="test", reason="demo")
    target = DemoTarget(cert_folder=tmp_path).start()  # the command's default --cert-days
    try:
        setup.ensure_demo_target_monitors(
            org=org, port=target.port, tls_port=target.tls_port, cert_folder=tmp_path
        )
        cert = Monitor.objects.get(organization=org, name="shop certificate")
        engine.run_monitors([cert.pk])  # a real TLS handshake with the target
    finally:
        target.stop()
    incident = Incident.objects.get(monitor=cert)
    assert f"expires in {days} days" in incident.title
    # Still so half a day later (the product counts whole days left).
    left = incident.cause["cert_expires_at"]
    expires = datetime.fromisoformat(left)
    assert (expires - (incident.opened_at + timedelta(hours=11, minutes=59))).days == days


@pytest.mark.django_db
def test_search_is_in_maintenance_for_the_stated_minutes_of_every_quarter_hour(org, tmp_path):
    (minutes,) = stated(r"the first (\d+) minutes of every quarter hour")
    organization_change_plan(org=org, plan_code="pro", source="test", reason="demo")
    setup.ensure_demo_target_monitors(org=org, port=1, tls_port=None, cert_folder=tmp_path)
    setup.ensure_demo_loop(org=org, port=1, secret="s" * 20)
    window = MaintenanceWindow.objects.get(organization=org, name=setup.MAINTENANCE)
    search = Monitor.objects.get(organization=org, name=setup.MAINTENANCE_MONITOR)
    assert windows.covers(window, search)
    hour = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    in_force = [m for m in range(60) if windows.is_active(window, hour + timedelta(minutes=m))]
    assert in_force == [q + m for q in (0, 15, 30, 45) for m in range(minutes)]
