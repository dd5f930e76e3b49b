"""Monitor status changes become incidents: open on down, failed again, resolve on recovery."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.incidents.models import EventKind, Incident, IncidentStatus, StatusChange
from tests.factories import make_monitor
from tests.incidents.conftest import down, feed, notified, up

pytestmark = pytest.mark.django_db


def test_a_monitor_going_down_opens_one_incident_and_recovery_resolves_it(org, published):
    monitor = make_monitor(org)
    feed(monitor, up(), down())
    assert not Incident.objects.exists()  # one failure is below the threshold of 2
    feed(monitor, down())
    incident = Incident.objects.get()
    assert (incident.rule, incident.severity, incident.status) == (
        "service_down",
        "error",
        "triggered",
    )
    assert incident.cause["error_class"] == "connection"
    assert incident.title == "api is down"
    feed(monitor, up())
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    assert incident.resolved_by is None
    assert notified(published) == [("service_down", "opened"), ("service_down", "resolved")]
    resolved = incident.events.get(kind=EventKind.RESOLVED)
    assert resolved.data["auto"] is True
    # Listeners get saved rows (alerts keys its outbox on the event id).
    assert [p.event_id for p in published] == list(
        incident.events.order_by("at", "id").values_list("id", flat=True)
    )


def test_every_status_change_is_a_row(org):
    monitor = make_monitor(org)
    feed(monitor, up(), down(), down(), up())
    changes = list(
        StatusChange.objects.filter(monitor=monitor).order_by("at", "id").values_list("old", "new")
    )
    assert changes == [("unknown", "up"), ("up", "down"), ("down", "up")]


def test_failures_while_down_fold_into_the_open_incident(org, published):
    monitor = make_monitor(org)
    start = timezone.now()
    for i in range(6):
        feed(monitor, down(), at=start + timedelta(minutes=i))
    incident = Incident.objects.get()
    assert incident.occurrences == 5  # the opening failure and four more
    assert incident.last_seen_at == start + timedelta(minutes=5)
    kinds = list(incident.events.values_list("kind", "count"))
    assert kinds == [("opened", 1), ("failed_again", 4)]  # collapsed into one line
    assert notified(published) == [("service_down", "opened")]


def test_a_critical_monitor_opens_a_critical_incident(org):
    monitor = make_monitor(org, critical=True)
    feed(monitor, down(), down())
    incident = Incident.objects.get()
    assert (incident.rule, incident.severity) == ("critical_service_down", "critical")


def test_opening_counts_in_the_incidents_metric(org, django_capture_on_commit_callbacks):
    from healthorch import metrics

    before = metrics.incidents_created_total.labels(severity="error")._value.get()
    with django_capture_on_commit_callbacks(execute=True):  # counted once committed
        feed(make_monitor(org), down(), down())
    after = metrics.incidents_created_total.labels(severity="error")._value.get()
    assert after == before + 1


def _statements(monitors, outcome) -> int:
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    from apps.monitors import engine
    from apps.monitors.models import Monitor

    fresh = list(Monitor.objects.filter(pk__in=[m.pk for m in monitors]))
    reset_queries()  # the debug log is a bounded deque: start it empty so counts are exact
    with CaptureQueriesContext(connection) as captured:
        engine.results_record(monitors=fresh, outcomes=[outcome() for _ in fresh], region="default")
    return len(captured.captured_queries)


@pytest.mark.parametrize("outcome", [down, up], ids=["going-down", "recovering"])
def test_many_monitors_changing_at_once_cost_the_same_statements_as_a_few(org, outcome):
    """A batch of monitors going down (or recovering) together is a fixed number of
    statements, however many monitors: the incidents listeners work on the whole batch.

    The incident-event listeners (apps.alerts, apps.healing) are detached here: this
    measures what incidents costs. tests/alerts/test_batch_seam.py measures the openings with
    the alerts listener attached."""
    from apps.incidents import events
    from apps.plans.services import organization_change_plan

    with events.incident_event.muted(), events.incident_events.muted():
        organization_change_plan(org=org, plan_code="business", source="test")
        few = [make_monitor(org, name=f"f{i}", failure_threshold=1) for i in range(3)]
        # 30: on SQLite a bulk INSERT of more rows than 999 parameters allow is split in two
        # (Django's batch size for SQLite), which is the database's cap, not the listeners'.
        many = [make_monitor(org, name=f"m{i}", failure_threshold=1) for i in range(30)]
        for group in (few, many):
            # Start from the opposite state (for recoveries: down with an open incident).
            first = up if outcome is down else down
            _statements(group, first)
        small, large = _statements(few, outcome), _statements(many, outcome)
        assert small > 5  # measured, not vacuous
        assert large == small
        expected = "triggered" if outcome is down else "resolved"
        assert Incident.objects.filter(status=expected).count() == 33


def test_a_healthy_batch_costs_the_incidents_no_statement(org):
    from apps.monitors import events

    monitors = [make_monitor(org, name=f"m{i}") for i in range(5)]
    _statements(monitors, up)  # unknown -> up: status changes
    with_listeners = _statements(monitors, up)
    with events.status_changes.muted(), events.fold.muted():
        assert _statements(monitors, up) == with_listeners


def test_pausing_and_resuming_are_rows_of_the_history_and_never_count_as_flapping(org, published):
    from apps.monitors import services as monitor_services

    monitor = make_monitor(org)
    feed(monitor, up())
    for _ in range(4):  # 8 changes, over the flapping threshold of 5 if they counted
        monitor_services.monitor_pause(monitor=monitor)
        monitor_services.monitor_resume(monitor=monitor)
    feed(monitor, up())

    changes = list(
        StatusChange.objects.filter(monitor=monitor).order_by("at", "id").values_list("old", "new")
    )
    assert changes == [("unknown", "up")] + [("up", "paused"), ("paused", "unknown")] + [
        ("unknown", "paused"),
        ("paused", "unknown"),
    ] * 3 + [("unknown", "up")]
    assert not Incident.objects.filter(monitor=monitor).exists()
    assert notified(published) == []
