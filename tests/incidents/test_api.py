"""The incidents API: list with filters, detail with timeline, acknowledge / resolve / notes /
snooze, custom incidents; tenancy (outsiders get 404, viewers read only) and query counts."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.incidents import selectors, services
from apps.incidents.models import EventKind, Incident, IncidentStatus, MaintenanceWindow
from apps.plans.metering import api_usage
from apps.plans.services import organization_change_plan
from tests.factories import make_monitor
from tests.incidents.conftest import down, feed, notified, up

pytestmark = pytest.mark.django_db
# An API-key list request: the key (with organization and plan), then the rows, then at most
# one prefetch; the same for 2 rows or 15.
QUERIES = 3


@pytest.fixture
def incident(org):
    monitor = make_monitor(org)
    feed(monitor, down(), down())
    return Incident.objects.get(monitor=monitor)


@pytest.fixture
def other_incident(other_org):
    monitor = make_monitor(other_org, name="theirs")
    feed(monitor, down(), down())
    return Incident.objects.get(monitor=monitor)


def _url(incident, action=""):
    return f"/api/v1/incidents/{incident.pk}/" + (f"{action}/" if action else "")


def test_the_list_shows_the_organizations_incidents_newest_first(
    client_for, member, incident, other_incident
):
    body = client_for(member).get("/api/v1/incidents/").json()
    assert [i["id"] for i in body["results"]] == [str(incident.pk)]
    row = body["results"][0]
    assert row["monitor"]["name"] == "api"
    assert (row["status"], row["severity"], row["rule"]) == ("triggered", "error", "service_down")


def test_the_list_filters_by_status_severity_monitor_and_time(client_for, member, org, incident):
    client = client_for(member)
    critical = make_monitor(org, name="db", critical=True)
    feed(critical, down(), down())
    feed(critical, up())
    get = lambda q: [i["title"] for i in client.get(f"/api/v1/incidents/?{q}").json()["results"]]  # noqa: E731
    assert get("status=open") == ["api is down"]
    assert get("status=resolved") == ["db is down"]
    assert sorted(get("severity=critical,error")) == ["api is down", "db is down"]
    assert get("severity=critical") == ["db is down"]
    assert get(f"monitor={critical.pk}") == ["db is down"]
    future = (timezone.now() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    assert get(f"since={future}") == []
    assert len(get(f"until={future}")) == 2


def test_bad_filters_are_400_with_the_field_named(client_for, member):
    client = client_for(member)
    for query, field in (
        ("status=bogus", "status"),
        ("severity=loud", "severity"),
        ("monitor=nope", "monitor"),
        ("since=yesterday", "since"),
    ):
        response = client.get(f"/api/v1/incidents/?{query}")
        assert response.status_code == 400, query
        assert field in response.json()["fields"]


def test_the_detail_has_the_timeline(client_for, member, incident):
    body = client_for(member).get(_url(incident)).json()
    assert [e["kind"] for e in body["timeline"]] == ["opened"]
    assert body["timeline"][0]["data"]["notify"] is True
    assert body["cause"]["error_class"] == "connection"
    assert body["timeline_next"] is None


def test_a_long_timeline_pages_by_cursor(client_for, member, incident):
    client = client_for(member)
    for i in range(60):
        services.incident_note(incident=incident, user=member, text=f"note {i}")
    detail = client.get(_url(incident)).json()
    assert len(detail["timeline"]) == 50
    assert detail["timeline_next"].endswith(f"/api/v1/incidents/{incident.pk}/timeline/")
    first = client.get(_url(incident, "timeline") + "?page_size=40").json()
    second = client.get(first["next"]).json()
    notes = [e["note"] for e in first["results"] + second["results"]]
    assert notes == ["", *(f"note {i}" for i in range(60))]
    assert second["next"] is None


def test_acknowledging_records_who_and_the_note_and_stops_escalation(
    client_for, member, incident, published
):
    Incident.objects.filter(pk=incident.pk).update(next_escalation_at=timezone.now())
    response = client_for(member).post(
        _url(incident, "acknowledge"), {"note": "on it"}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "acknowledged"
    assert body["acknowledged_by"]["email"] == member.email
    assert body["next_escalation_at"] is None
    ack = body["timeline"][-1]
    assert (ack["kind"], ack["note"], ack["actor"]["email"]) == (
        "acknowledged",
        "on it",
        member.email,
    )
    assert published[-1].kind == "acknowledged"
    assert published[-1].notify is False


def test_acknowledging_twice_is_a_conflict(client_for, member, incident):
    client = client_for(member)
    assert client.post(_url(incident, "acknowledge"), {}, format="json").status_code == 200
    response = client.post(_url(incident, "acknowledge"), {}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "already_acknowledged"


def test_resolving_by_hand_records_who_and_notifies(client_for, member, incident, published):
    response = client_for(member).post(
        _url(incident, "resolve"), {"note": "restarted it"}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "resolved"
    assert body["resolved_by"]["email"] == member.email
    resolved = body["timeline"][-1]
    assert (resolved["kind"], resolved["note"], resolved["data"]["auto"]) == (
        "resolved",
        "restarted it",
        False,
    )
    assert notified(published)[-1] == ("service_down", "resolved")
    # Resolved by hand while still down: the next failure opens a new incident.
    feed(incident.monitor, down())
    assert Incident.objects.filter(monitor=incident.monitor).count() == 1
    assert client_for(member).post(_url(incident, "resolve"), {}, format="json").status_code == 409


def test_notes_need_text(client_for, member, incident):
    client = client_for(member)
    response = client.post(_url(incident, "notes"), {}, format="json")
    assert response.status_code == 400
    assert "text" in response.json()["fields"]
    response = client.post(_url(incident, "notes"), {"text": "looking", "pin": True}, format="json")
    assert response.status_code == 400
    assert "pin" in response.json()["fields"]
    response = client.post(_url(incident, "notes"), {"text": "looking"}, format="json")
    assert response.status_code == 201
    assert incident.events.filter(kind=EventKind.NOTE, note="looking", actor=member).exists()


def test_a_custom_incident_is_raised_and_notified(client_for, member, org, published):
    response = client_for(member).post(
        "/api/v1/incidents/",
        {
            "name": "Payments provider outage",
            "severity": "critical",
            "description": "Stripe is down",
        },
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["title"], body["severity"], body["rule"], body["monitor"]) == (
        "Payments provider outage",
        "critical",
        "custom",
        None,
    )
    assert notified(published) == [("custom", "opened")]
    assert Incident.objects.get(pk=body["id"]).organization == org


def test_a_custom_incident_needs_a_name_and_a_known_severity(client_for, member):
    response = client_for(member).post(
        "/api/v1/incidents/", {"severity": "apocalyptic"}, format="json"
    )
    assert response.status_code == 400
    assert {"name", "severity"} <= set(response.json()["fields"])


def test_snoozing_silences_the_monitor_for_an_hour(client_for, member, incident, published):
    response = client_for(member).post(_url(incident, "snooze"), {}, format="json")
    assert response.status_code == 201
    silence = MaintenanceWindow.objects.get(pk=response.json()["silence"])
    assert silence.kind == "silence"
    assert silence.incident == incident
    assert list(silence.monitors.all()) == [incident.monitor]
    assert abs((silence.ends_at - silence.starts_at) - timedelta(hours=1)) < timedelta(seconds=1)
    assert selectors.incident_is_silenced(incident=incident)  # escalation should wait
    # While snoozed, the monitor recovers and fails again: recorded, nobody notified.
    before = len(notified(published))
    feed(incident.monitor, up(), down(), down())
    assert len(notified(published)) == before
    reopened = Incident.objects.filter(
        monitor=incident.monitor, status=IncidentStatus.TRIGGERED
    ).get()
    assert reopened.suppressed
    assert reopened.suppressed_reason.startswith("silenced by")


def test_a_custom_incident_cannot_be_snoozed(client_for, member):
    client = client_for(member)
    created = client.post("/api/v1/incidents/", {"name": "x"}, format="json").json()
    response = client.post(f"/api/v1/incidents/{created['id']}/snooze/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "no_monitor"


# --- Tenancy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "payload"),
    [("acknowledge", {}), ("resolve", {}), ("notes", {"text": "x"}), ("snooze", {})],
)
def test_a_viewer_reads_but_cannot_act(client_for, viewer, incident, action, payload):
    client = client_for(viewer)
    assert client.get(_url(incident)).status_code == 200
    assert client.post(_url(incident, action), payload, format="json").status_code == 403
    assert client.post("/api/v1/incidents/", {"name": "x"}, format="json").status_code == 403


def test_a_read_only_key_cannot_acknowledge(key_client, org, incident):
    client = key_client(org, scopes=("read",))
    assert client.get("/api/v1/incidents/").status_code == 200
    assert client.post(_url(incident, "acknowledge"), {}, format="json").status_code == 403


def test_the_incident_list_does_not_grow_with_incidents(
    key_client, org, member, django_assert_max_num_queries
):
    organization_change_plan(org=org, plan_code="pro", source="test")
    client = key_client(org)
    for i in range(3):
        feed(make_monitor(org, name=f"m{i}"), down(), down())
    Incident.objects.update(acknowledged_by=member)
    client.get("/api/v1/incidents/")
    api_usage.flush()
    with django_assert_max_num_queries(QUERIES):
        assert client.get("/api/v1/incidents/").status_code == 200
    for i in range(3, 15):
        feed(make_monitor(org, name=f"m{i}"), down(), down())
    Incident.objects.update(acknowledged_by=member)
    api_usage.flush()
    with django_assert_max_num_queries(QUERIES):
        body = client.get("/api/v1/incidents/").json()
    assert len(body["results"]) == 15


def test_the_timeline_costs_the_same_for_many_events(
    key_client, org, incident, member, django_assert_max_num_queries
):
    client = key_client(org)
    for i in range(20):
        services.incident_note(incident=incident, user=member, text=str(i))
    client.get(_url(incident))
    api_usage.flush()
    with django_assert_max_num_queries(4):  # key, incident, events (+ actors joined)
        assert client.get(_url(incident)).status_code == 200
