"""The whole alerting path across apps, with real peers: an HTTP monitor checked against a
local target crosses its failure threshold, the incidents state machine opens an incident,
the alerts listener writes the outbox row, the delivery task sends a signed webhook to a local
receiver; recovery resolves the incident and the receiver hears that too."""

from __future__ import annotations

import pytest

from apps.alerts.models import Notification, NotificationStatus
from apps.incidents.models import EventKind, Incident, IncidentStatus
from apps.monitors import engine, services
from tests.alerts.conftest import make_webhook
from tests.monitors import targets

pytestmark = pytest.mark.django_db
http_target = targets.http_target


def _check(monitor, nudges, capture):
    with capture(execute=True):
        engine.run_monitors([monitor.pk])
    nudges.drain()


def test_a_monitor_going_down_and_up_reaches_the_webhook_once_each_way(
    org, http_target, receiver, nudges, capture
):
    make_webhook(org, receiver)
    url = http_target.route("/api", status=503)
    monitor = services.monitor_create(
        org=org,
        data={"name": "api", "kind": "http", "timeout_seconds": 2, "config": {"url": url}},
    )

    _check(monitor, nudges, capture)  # one failure: below the threshold of 2
    assert not Incident.objects.filter(monitor=monitor).exists()
    assert receiver.delivered == []

    _check(monitor, nudges, capture)  # second failure: down
    incident = Incident.objects.get(monitor=monitor)
    assert incident.status == IncidentStatus.TRIGGERED
    assert len(receiver.delivered) == 1
    assert receiver.bad_signatures == 0
    opened = receiver.delivered[0]
    assert "api" in str(opened)

    _check(monitor, nudges, capture)  # still down: folded into the same incident, no new message
    assert Incident.objects.filter(monitor=monitor).count() == 1
    assert len(receiver.delivered) == 1

    http_target.route("/api", status=200)
    _check(monitor, nudges, capture)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    assert len(receiver.delivered) == 2
    kinds = list(incident.events.values_list("kind", flat=True))
    assert kinds[0] == EventKind.OPENED
    assert EventKind.RESOLVED in kinds
    assert EventKind.NOTIFIED in kinds
    assert set(Notification.objects.filter(incident=incident).values_list("status", flat=True)) == {
        NotificationStatus.SENT
    }


def test_a_child_suppressed_by_its_down_parent_still_announces_its_recovery(
    org, http_target, receiver, nudges, capture
):
    from apps.incidents import services as incident_services

    make_webhook(org, receiver)

    def monitor(name, path):
        return services.monitor_create(
            org=org,
            data={
                "name": name,
                "kind": "http",
                "timeout_seconds": 2,
                "failure_threshold": 1,
                "config": {"url": http_target.route(path, status=503)},
            },
        )

    router, app = monitor("router", "/router"), monitor("app", "/app")
    incident_services.dependency_create(org=org, monitor=app, depends_on=router)
    _check(router, nudges, capture)
    assert len(receiver.delivered) == 1  # the parent's outage is announced

    _check(app, nudges, capture)
    child = Incident.objects.get(monitor=app)
    assert child.suppressed
    assert len(receiver.delivered) == 1  # the child's opening is recorded, not sent

    http_target.route("/app", status=200)
    _check(app, nudges, capture)
    child.refresh_from_db()
    assert child.status == IncidentStatus.RESOLVED
    assert len(receiver.delivered) == 2
    assert receiver.delivered[-1]["event"] == "resolved"
    assert receiver.delivered[-1]["monitor"] == "app"
