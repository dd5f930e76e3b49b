"""Root cause cites log evidence: the incident's log source (a monitor's slug, or the source an
error_signature incident names), its error signatures new in the window and its error-rate
change against the day before; never another organization's lines."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.alerts.services import outbox
from apps.incidents.errorsig import error_signature_sweep
from apps.incidents.models import AlertRule, Incident, RuleKind
from apps.telemetry import services as telemetry
from apps.telemetry.storage import logs_write
from tests.factories import make_monitor
from tests.incidents.conftest import down, feed

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_broker_for_alerts(monkeypatch):
    monkeypatch.setattr(outbox, "_send", lambda *a, **k: None)


def write(org, source, message, at, n=1):
    logs_write(
        org_id=org.pk,
        rows=[(at, source, "error", message.format(i=i), {}, "", "") for i in range(n)],
    )


def _evidence(client, incident, kind):
    response = client.get(f"/api/v1/incidents/{incident.pk}/root-cause")
    assert response.status_code == 200
    return [e for e in response.json()["evidence"] if e["kind"] == kind]


def test_a_monitors_incident_cites_its_sources_new_signatures_and_error_rate(
    org, other_org, owner, client_for
):
    now = timezone.now()
    checkout = make_monitor(org, "checkout")
    # The day before: a steady, known error, 1 line an hour.
    for h in range(2, 26):
        write(org, "checkout", "cache miss for key {i}", now - timedelta(hours=h))
    telemetry.error_signatures_mine(now=now - timedelta(hours=1))
    # Ten minutes before the monitor goes down: a new error, 40 lines.
    write(
        org, "checkout", "connection pool exhausted after {i} ms", now - timedelta(minutes=10), 40
    )
    # Another organization with a source of the same name: never cited.
    write(other_org, "checkout", "someone else's secret failure {i}", now, 50)
    telemetry.error_signatures_mine(now=now)
    feed(checkout, down(), down(), down())
    incident = Incident.objects.get(monitor=checkout)

    client = client_for(owner)
    [new] = _evidence(client, incident, "new_log_signature")
    assert new["details"]["template"] == "connection pool exhausted after <NUM> ms"
    assert new["details"]["count"] == 40
    assert "min before the opening" in new["title"]
    [rate] = _evidence(client, incident, "log_error_rate")
    assert 0.9 <= rate["details"]["day_before_per_hour"] <= 1.0  # the hour boundary decides
    assert rate["details"]["per_hour"] > 2


def test_an_error_signature_incident_cites_its_own_source(org, owner, client_for):
    now = timezone.now()
    AlertRule.objects.create(
        organization=org, kind=RuleKind.ERROR_SIGNATURE, enabled=True, severity="warning"
    )
    write(org, "billing", "invoice {i} failed to render", now - timedelta(minutes=2), 5)
    telemetry.error_signatures_mine(now=now)
    error_signature_sweep(now=now)
    incident = Incident.objects.get(rule=RuleKind.ERROR_SIGNATURE)
    [new] = _evidence(client_for(owner), incident, "new_log_signature")
    assert new["details"]["source"] == "billing"
    assert new["details"]["template"] == "invoice <NUM> failed to render"


def test_another_tenant_cannot_read_the_root_cause(org, outsider, client_for):
    now = timezone.now()
    AlertRule.objects.create(
        organization=org, kind=RuleKind.ERROR_SIGNATURE, enabled=True, severity="warning"
    )
    write(org, "billing", "invoice {i} failed to render", now, 5)
    telemetry.error_signatures_mine(now=now)
    error_signature_sweep(now=now)
    incident = Incident.objects.get(rule=RuleKind.ERROR_SIGNATURE)
    response = client_for(outsider).get(f"/api/v1/incidents/{incident.pk}/root-cause")
    assert response.status_code == 404


def test_log_evidence_reads_a_fixed_number_of_times(
    org, owner, client_for, django_assert_max_num_queries
):
    now = timezone.now()
    checkout = make_monitor(org, "checkout")
    feed(checkout, down(), down(), down())
    incident = Incident.objects.get(monitor=checkout)
    client = client_for(owner)

    def count():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as ctx:
            assert client.get(f"/api/v1/incidents/{incident.pk}/root-cause").status_code == 200
        return len(ctx.captured_queries)

    write(org, "checkout", "first kind {i}", now - timedelta(minutes=5), 3)
    telemetry.error_signatures_mine(now=now)
    few = count()
    for i in range(30):
        write(org, "checkout", f"kind{i} failed at step {{i}}", now - timedelta(minutes=5), 3)
    telemetry.error_signatures_mine(now=now)
    assert count() == few
