"""Monitor status changes become incidents: open on down, failed again, resolve on recovery."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.incidents.models import EventKind, Incident, IncidentStatus, StatusChange
from tests.incidents.conftest import down, feed, make_monitor, notified, up

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
