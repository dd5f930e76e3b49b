"""Flapping (one notice, not one per flip), grouping (one open incident per monitor and rule,
even when two transactions race) and dependencies (children suppressed while a parent is
down, recoveries still delivered)."""

import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from apps.incidents import services, sweeps
from apps.incidents.models import AlertRule, Incident, IncidentStatus, RuleKind
from apps.monitors.models import MonitorStatus
from tests.factories import make_monitor
from tests.incidents.conftest import down, feed, notified, up

pytestmark = pytest.mark.django_db


def _flip(monitor, times, start, step=timedelta(minutes=1)):
    """Alternate down/up `times` status changes, one minute apart (threshold 1 each way)."""
    at = start
    for i in range(times):
        feed(monitor, down() if i % 2 == 0 else up(), at=at)
        at += step
    return at


def test_a_flapping_monitor_sends_one_flapping_notice_instead_of_one_per_flip(org, published):
    monitor = make_monitor(org, failure_threshold=1)
    start = timezone.now() - timedelta(minutes=30)
    end = _flip(monitor, 12, start)
    flapping = Incident.objects.get(rule=RuleKind.FLAPPING)
    assert flapping.status == IncidentStatus.TRIGGERED
    assert flapping.cause["changes"] == 6  # more than 5 changes in 30 minutes
    assert flapping.occurrences == 7  # the opening change and the six after it
    # The first five flips notified as usual; from the sixth on, only the flapping notice.
    assert notified(published) == [
        ("service_down", "opened"),
        ("service_down", "resolved"),
        ("service_down", "opened"),
        ("service_down", "resolved"),
        ("service_down", "opened"),
        ("flapping", "opened"),
    ]
    assert Incident.objects.filter(rule=RuleKind.SERVICE_DOWN).count() == 3
    # Quiet for a while (12 flips ended up): it settles, the notice says so, and the open
    # down incident from before the episode resolves as the monitor is up.
    assert sweeps.flapping_settle(now=end + timedelta(minutes=2)) == 0  # still busy
    assert sweeps.flapping_settle(now=end + timedelta(minutes=31)) == 1
    flapping.refresh_from_db()
    assert flapping.status == IncidentStatus.RESOLVED
    assert notified(published)[-2:] == [("flapping", "resolved"), ("service_down", "resolved")]
    assert not Incident.objects.filter(status__in=["triggered", "acknowledged"]).exists()


def test_a_monitor_that_settles_down_keeps_one_down_incident(org, published):
    monitor = make_monitor(org, failure_threshold=1)
    start = timezone.now() - timedelta(minutes=40)
    end = _flip(monitor, 7, start)  # ends down
    assert monitor.status == MonitorStatus.DOWN
    sweeps.flapping_settle(now=end + timedelta(minutes=31))
    open_ = Incident.objects.filter(status=IncidentStatus.TRIGGERED)
    assert [i.rule for i in open_] == [RuleKind.SERVICE_DOWN]


def test_the_flapping_threshold_is_a_per_organization_setting(org, other_org):
    AlertRule.objects.create(
        organization=org, kind=RuleKind.FLAPPING, threshold=2, window_seconds=600, severity="info"
    )
    ours, theirs = (
        make_monitor(org, failure_threshold=1),
        make_monitor(other_org, failure_threshold=1),
    )
    start = timezone.now() - timedelta(minutes=5)
    _flip(ours, 3, start)
    _flip(theirs, 3, start)
    assert Incident.objects.get(rule=RuleKind.FLAPPING).monitor == ours
    assert Incident.objects.get(rule=RuleKind.FLAPPING).severity == "info"


def test_flapping_can_be_turned_off(org):
    AlertRule.objects.create(
        organization=org, kind=RuleKind.FLAPPING, enabled=False, severity="warning"
    )
    _flip(make_monitor(org, failure_threshold=1), 12, timezone.now() - timedelta(minutes=20))
    assert not Incident.objects.filter(rule=RuleKind.FLAPPING).exists()
    assert Incident.objects.filter(rule=RuleKind.SERVICE_DOWN).count() == 6


# --- Grouping ---------------------------------------------------------------------------------


def test_a_rule_already_open_for_a_monitor_updates_it_instead_of_opening_another(org):
    monitor = make_monitor(org)
    feed(monitor, down(), down())
    incident = Incident.objects.get()
    again, opened = services.incident_open(
        monitor=monitor, rule=RuleKind.SERVICE_DOWN, severity="error", title="x", at=timezone.now()
    )
    assert (again.pk, opened) == (incident.pk, False)
    assert Incident.objects.get().occurrences == 2


@pytest.mark.django_db(transaction=True)
def test_two_openers_racing_end_with_one_incident(org):
    """Two transactions open the same (monitor, rule) at once: the partial unique constraint
    makes the second fold into the first instead of opening a duplicate."""
    if connection.vendor != "postgresql":
        pytest.skip("needs concurrent writers (PostgreSQL)")
    monitor = make_monitor(org)
    barrier = threading.Barrier(2, timeout=10)
    results, errors = [], []

    def open_one():
        try:
            with transaction.atomic():
                # Both see no open incident before either inserts.
                assert services.open_locked(monitor.pk, RuleKind.SERVICE_DOWN) is None
                barrier.wait()
                results.append(
                    services.incident_open(
                        monitor=monitor,
                        rule=RuleKind.SERVICE_DOWN,
                        severity="error",
                        title="down",
                        at=timezone.now(),
                    )[1]
                )
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=open_one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert errors == []
    assert sorted(results) == [False, True]
    incident = Incident.objects.get()
    assert incident.occurrences == 2


# --- Dependencies -----------------------------------------------------------------------------


@pytest.fixture
def network(org):
    router = make_monitor(org, name="router")
    app = make_monitor(org, name="app")
    services.dependency_create(org=org, monitor=app, depends_on=router)
    return router, app


def test_a_child_of_a_down_parent_is_recorded_but_not_notified(network, published):
    router, app = network
    feed(router, down(), down())
    feed(app, down(), down())
    child = Incident.objects.get(monitor=app)
    assert child.suppressed
    assert child.suppressed_reason == "depends on router, which is down"
    assert notified(published) == [("service_down", "opened")]  # the router only
    assert published[-1].incident == child
    assert published[-1].notify is False
    # Its recovery is still delivered, and it kept being checked all along.
    feed(app, up())
    assert app.status == MonitorStatus.UP
    assert notified(published)[-1] == ("service_down", "resolved")
    assert published[-1].incident.pk == child.pk


def test_a_child_going_down_alone_is_notified(network, published):
    _router, app = network
    feed(app, down(), down())
    assert not Incident.objects.get(monitor=app).suppressed
    assert notified(published) == [("service_down", "opened")]


def test_dependencies_refuse_cycles_and_self(org, network):
    from apps.core.errors import ServiceError

    router, app = network
    with pytest.raises(ServiceError, match="cycle"):
        services.dependency_create(org=org, monitor=router, depends_on=app)
    with pytest.raises(ServiceError, match="itself"):
        services.dependency_create(org=org, monitor=app, depends_on=app)
