"""Heartbeat monitors feed the same incidents: a job that misses its deadline opens one, each
`fail` ping while it is down counts as another occurrence of it, a success resolves it."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from apps.incidents.models import EventKind, Incident, IncidentStatus
from apps.monitors import heartbeats
from apps.monitors.models import MonitorStatus
from apps.monitors.pings import ping_accept

pytestmark = pytest.mark.django_db


def test_fail_pings_on_a_down_heartbeat_count_as_occurrences_of_its_open_incident(org, job):
    start = timezone.now()
    ping_accept(token=job.ping_token, kind="success", now=start)
    overdue = start + timedelta(seconds=3901)
    assert heartbeats.sweep_overdue(now=overdue) == 1
    job.refresh_from_db()
    assert job.status == MonitorStatus.DOWN
    incident = Incident.objects.get(monitor=job)
    assert incident.occurrences == 1

    for minutes in (1, 2, 3):
        with time_machine.travel(overdue + timedelta(minutes=minutes), tick=False):
            ping_accept(token=job.ping_token, kind="fail")

    incident.refresh_from_db()
    assert incident.occurrences == 4
    assert incident.last_seen_at == overdue + timedelta(minutes=3)
    assert incident.status == IncidentStatus.TRIGGERED
    again = incident.events.get(kind=EventKind.FAILED_AGAIN)
    assert again.count == 3  # one collapsed line, not one per ping
    assert Incident.objects.filter(monitor=job).count() == 1
    job.refresh_from_db()
    assert job.consecutive_failures == 4

    ping_accept(token=job.ping_token, kind="success", now=overdue + timedelta(minutes=4))
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED


def test_a_fail_ping_that_takes_a_heartbeat_down_opens_one_incident_and_the_next_one_folds(
    org, job
):
    now = timezone.now()
    ping_accept(token=job.ping_token, kind="success", now=now)
    ping_accept(token=job.ping_token, kind="fail", now=now + timedelta(seconds=1))
    ping_accept(token=job.ping_token, kind="exit", exit_code=2, now=now + timedelta(seconds=2))

    incident = Incident.objects.get(monitor=job)
    assert incident.occurrences == 2
