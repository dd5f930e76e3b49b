"""The batched seam between incidents and alerts: a fold batch that opens many incidents is
published as one batch, and the alerts listener writes its outbox rows in one insert and its
escalation walks in one update, so its cost does not grow with the number of incidents."""

from __future__ import annotations

import pytest
from django.db import connection, reset_queries, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.alerts.models import Notification, NotificationKind
from apps.incidents import events
from apps.incidents.models import EventKind, Incident, IncidentEvent
from apps.monitors import engine
from apps.monitors.models import Monitor
from apps.plans.services import organization_change_plan
from tests.alerts.conftest import make_webhook
from tests.factories import make_monitor
from tests.incidents.conftest import down

pytestmark = pytest.mark.django_db


def _fold_statements(monitors, outcome) -> list[str]:
    fresh = list(Monitor.objects.filter(pk__in=[m.pk for m in monitors]))
    reset_queries()  # the debug log is a bounded deque: start it empty so counts are exact
    with CaptureQueriesContext(connection) as captured:
        engine.results_record(monitors=fresh, outcomes=[outcome() for _ in fresh], region="default")
    return [q["sql"] for q in captured.captured_queries]


def test_a_fold_batch_opening_many_incidents_costs_the_same_statements_as_a_few(
    org, receiver, nudges
):
    organization_change_plan(org=org, plan_code="business", source="test")
    make_webhook(org, receiver, name="first", path="/first")
    make_webhook(org, receiver, name="second", path="/second")
    few = [make_monitor(org, name=f"f{i}", failure_threshold=1, critical=True) for i in range(3)]
    many = [make_monitor(org, name=f"m{i}", failure_threshold=1, critical=True) for i in range(20)]

    # Process-wide caches (which organizations have healing policies) warm up first.
    _fold_statements([make_monitor(org, name="warm-up", failure_threshold=1, critical=True)], down)
    small = _fold_statements(few, down)
    large = _fold_statements(many, down)

    assert len(large) == len(small)
    # (INSERT OR IGNORE on SQLite, ON CONFLICT DO NOTHING on PostgreSQL.)
    outbox_inserts = [q for q in large if q.startswith("INSERT") and '"alerts_notification"' in q]
    assert len(outbox_inserts) == 1
    walk_updates = [q for q in large if q.startswith('UPDATE "incidents_incident"')]
    assert len(walk_updates) == 1
    # Every critical incident told every channel (the first at once, the rest held to group).
    opened = Notification.objects.filter(kind=NotificationKind.OPENED)
    assert opened.count() == 2 * 24
    assert not Incident.objects.filter(next_escalation_at__isnull=True).exists()


def _opened_batch(org, n: int) -> list[tuple[Incident, IncidentEvent]]:
    now = timezone.now()
    incidents = Incident.objects.bulk_create(
        [
            Incident(
                organization=org,
                rule=f"r{i}",
                title=f"svc-{i} is down",
                severity="error",
                opened_at=now,
                last_seen_at=now,
            )
            for i in range(n)
        ]
    )
    opened = IncidentEvent.objects.bulk_create(
        [
            IncidentEvent(
                incident=i,
                organization_id=org.pk,
                kind=EventKind.OPENED,
                at=now,
                data={"notify": True},
            )
            for i in incidents
        ]
    )
    return list(zip(incidents, opened, strict=True))


def test_publishing_a_batch_of_openings_costs_the_listener_the_same_queries_for_4_or_24(
    org, receiver, nudges
):
    make_webhook(org, receiver)

    def cost(n: int) -> int:
        with transaction.atomic():
            batch = _opened_batch(org, n)
            with CaptureQueriesContext(connection) as captured:
                events.publish_many(batch)
        return len(captured.captured_queries)

    assert cost(4) == cost(24)
    assert Notification.objects.count() == 28
    # Each incident's walk was written: error incidents escalate to every channel in 5 min.
    assert (
        Incident.objects.filter(escalation_step=1, next_escalation_at__isnull=False).count() == 28
    )


def test_one_event_published_alone_still_reaches_batch_and_single_listeners(org):
    heard: list[tuple[str, object]] = []

    def batch(*, items):
        heard.extend(("batch", event.pk) for _, event in items)

    def single(*, incident, event):
        heard.append(("single", event.pk))

    events.incident_events.connect(batch)
    events.incident_event.connect(single)
    try:
        with transaction.atomic():
            [(incident, event)] = _opened_batch(org, 1)
            events.publish(incident=incident, event=event)
    finally:
        events.incident_events.disconnect(batch)
        events.incident_event.disconnect(single)
    assert heard == [("batch", event.pk), ("single", event.pk)]
