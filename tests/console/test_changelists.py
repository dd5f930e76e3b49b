"""Every busy changelist costs the same number of queries with 5 rows or 60 (no N+1), for an
operator and for a tenant member; tenants see only their own rows in each."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.healing.models import HealingAttempt
from apps.incidents.models import IncidentEvent, StatusChange
from apps.monitors.models import ErrorRollup, HeartbeatPing, MetricSample
from tests.console import support

pytestmark = pytest.mark.django_db

CHANGELISTS = [
    "/admin/monitors/monitor/",
    "/admin/monitors/checkresult/",
    "/admin/monitors/resultrollup/",
    "/admin/monitors/errorrollup/",
    "/admin/monitors/heartbeatping/",
    "/admin/monitors/metricsample/",
    "/admin/incidents/incident/",
    "/admin/incidents/incidentevent/",
    "/admin/incidents/statuschange/",
    "/admin/alerts/notification/",
    "/admin/alerts/channel/",
    "/admin/audit/auditentry/",
    "/admin/healing/healingattempt/",
    "/admin/tenants/membership/",
    "/admin/tenants/apikey/",
]
TENANT_HIDDEN = {"/admin/audit/auditentry/"}  # operators only


def _seed(org, n: int, tag: str) -> None:
    now = timezone.now()
    mons = support.monitors(org, n, status="down", prefix=tag)
    for m in mons:
        support.results(m, 2, outcome="down")
        support.rollups(m, hours=1, days=2)
        HeartbeatPing.objects.create(monitor=m, organization=org, kind="success", received_at=now)
        ErrorRollup.objects.create(
            monitor=m,
            organization=org,
            bucket_start=now.replace(minute=0, second=0, microsecond=0),
            outcome="down",
            error_class="timeout",
            message="timed out",
            count=2,
            first_seen=now,
            last_seen=now,
        )
        MetricSample.objects.create(organization=org, source=tag, name="cpu", value=1, ts=now)
        StatusChange.objects.create(monitor=m, organization=org, old="up", new="down", at=now)
        incident = support.incident(org, monitor=m, title=f"{tag} {m.name}")
        IncidentEvent.objects.create(incident=incident, organization=org, kind="opened", at=now)
        support.notification(org, status="dead", incident_row=incident)
        AuditEntry.objects.create(
            organization=org,
            actor_kind="system",
            actor_label="test",
            action="monitor.create",
            object_type="monitor",
            object_id=str(m.pk),
            object_repr=m.name,
        )
        HealingAttempt.objects.create(
            organization=org,
            monitor=m,
            incident=incident,
            decision="skip",
            explanation="no policy matched",
            status="skipped",
        )


def _count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries)


@pytest.mark.parametrize("url", CHANGELISTS)
def test_an_operators_changelist_does_not_grow_with_rows(url, org, other_org):
    client = support.operator_client()
    _seed(org, 2, "few")
    client.get(url)  # session, content types and caches warm
    few = _count(client, url)
    _seed(other_org, 30, "many")
    assert _count(client, url) == few
    assert few <= 12, f"{url}: {few} queries"


@pytest.mark.parametrize("url", [u for u in CHANGELISTS if u not in TENANT_HIDDEN])
def test_a_members_changelist_is_theirs_and_does_not_grow(url, owner, org, other_org):
    client = support.login(owner)
    _seed(org, 2, "acme")
    client.get(url)
    few = _count(client, url)
    _seed(org, 30, "acme")
    _seed(other_org, 5, "globex")
    assert _count(client, url) == few
    page = client.get(url).content.decode()
    assert "globex" not in page


def test_result_filters_are_fixed_choices_that_filter_without_scanning(org):
    (up_monitor,) = support.monitors(org, 1, prefix="upmon")
    (down_monitor,) = support.monitors(org, 1, prefix="downmon")
    support.results(up_monitor, 3, outcome="up")
    support.results(down_monitor, 2, outcome="down")
    client = support.operator_client()
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/admin/monitors/checkresult/?outcome=down").content.decode()
    assert "downmon" in page
    assert "upmon" not in page
    assert not [q for q in queries if "DISTINCT" in q["sql"].upper()]
    assert "?error_class=timeout" in page  # the choices come from the code, not the rows


def test_error_groups_filter_by_fixed_choices_without_scanning(org):
    (monitor,) = support.monitors(org, 1, prefix="errmon")
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    for outcome, error_class, message in (
        ("down", "timeout", "timed out after 10s"),
        ("inconclusive", "dns", "no such host"),
    ):
        ErrorRollup.objects.create(
            monitor=monitor,
            organization=org,
            bucket_start=hour,
            outcome=outcome,
            error_class=error_class,
            message=message,
            count=1,
            first_seen=hour,
            last_seen=hour,
        )
    client = support.operator_client()
    with CaptureQueriesContext(connection) as queries:
        page = client.get("/admin/monitors/errorrollup/?outcome=down").content.decode()
    assert "timed out after 10s" in page
    assert "no such host" not in page
    assert not [q for q in queries if "DISTINCT" in q["sql"].upper()]
