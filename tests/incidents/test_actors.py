"""Who acted, everywhere an incident records it: a user, an API key (its name and prefix, kept
after the key is renamed or purged), or the system. In the API, the console, the audit log and
the resolved notification's text."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from apps.alerts import messages
from apps.audit.models import AuditEntry
from apps.incidents import services
from apps.incidents.models import EventKind, Incident, IncidentEvent, MaintenanceWindow
from apps.tenants.models import ApiKey
from apps.tenants.services import api_key_revoke, api_key_update, api_keys_purge_dead
from tests.factories import make_monitor
from tests.incidents.conftest import down, feed, up

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(org):
    monitor = make_monitor(org)
    feed(monitor, down(), down())
    return Incident.objects.get(monitor=monitor)


def _url(incident, action=""):
    return f"/api/v1/incidents/{incident.pk}/" + (f"{action}/" if action else "")


def _key_of(client) -> dict:
    key = client.api_key
    return {"id": str(key.pk), "name": "test", "prefix": key.prefix}


def _label(client) -> str:
    return f'API key "test" ({client.api_key.prefix})'


def test_an_api_key_acknowledging_is_recorded_by_name_and_prefix(key_client, org, incident):
    client = key_client(org)
    body = client.post(_url(incident, "acknowledge"), {"note": "bot"}, format="json").json()
    assert body["acknowledged_by"] is None
    assert body["acknowledged_by_key"] == _key_of(client)
    ack = body["timeline"][-1]
    assert (ack["kind"], ack["actor"], ack["actor_key"]) == ("acknowledged", None, _key_of(client))
    entry = AuditEntry.objects.get(action="incident.acknowledged")
    assert (entry.actor_kind, entry.actor_label) == ("api_key", _label(client))


def test_a_user_acknowledging_is_recorded_as_the_user(client_for, member, incident):
    body = client_for(member).post(_url(incident, "acknowledge"), {}, format="json").json()
    assert body["acknowledged_by"]["email"] == member.email
    assert body["acknowledged_by_key"] is None
    assert body["timeline"][-1]["actor_key"] is None


@pytest.mark.parametrize("action", ["resolve", "notes", "snooze"])
def test_an_api_key_resolving_noting_or_snoozing_is_on_the_timeline(
    action, key_client, org, incident
):
    client = key_client(org)
    payload = {"text": "looked"} if action == "notes" else {}
    response = client.post(_url(incident, action), payload, format="json")
    assert response.status_code in (200, 201), response.content
    event = IncidentEvent.objects.filter(incident=incident).latest("id")
    assert event.kind == {"resolve": "resolved", "notes": "note", "snooze": "suppressed"}[action]
    assert (event.actor_id, event.actor_key) == (None, _key_of(client))
    if action == "resolve":
        assert response.json()["resolved_by_key"] == _key_of(client)
    if action == "snooze":
        silence = MaintenanceWindow.objects.get(incident=incident)
        assert (silence.created_by_id, silence.created_by_key) == (None, _key_of(client))


def test_the_system_resolving_records_no_actor(org, incident):
    feed(incident.monitor, up())
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert (incident.resolved_by_id, incident.resolved_by_key) == (None, None)
    event = IncidentEvent.objects.get(incident=incident, kind=EventKind.RESOLVED)
    assert (event.actor_id, event.actor_key) == (None, None)
    body = messages.incident_payload(incident=incident, kind="resolved")["body"]
    assert " by " not in body.splitlines()[0]


def test_the_resolved_notification_names_who_resolved(key_client, client_for, member, org):
    client = key_client(org)
    for who, expected in ((client, _label(client)), (client_for(member), member.email)):
        monitor = make_monitor(org, name=f"m-{expected[:8]}")
        feed(monitor, down(), down())
        incident = Incident.objects.get(monitor=monitor)
        who.post(_url(incident, "resolve"), {}, format="json")
        incident.refresh_from_db()
        line = messages.incident_payload(incident=incident, kind="resolved")["body"].splitlines()
        assert line[0].endswith(f" by {expected}."), line


def test_a_custom_incident_raised_by_a_key_names_it(key_client, org):
    client = key_client(org)
    body = client.post(
        "/api/v1/incidents/", {"name": "disk full", "severity": "warning"}, format="json"
    ).json()
    opened = body["timeline"][0]
    assert (opened["kind"], opened["actor"], opened["actor_key"]) == (
        "opened",
        None,
        _key_of(client),
    )
    assert body["cause"]["api_key"] == _key_of(client)


@pytest.mark.parametrize("who", ["key", "user"])
def test_maintenance_windows_show_who_made_them(who, key_client, client_for, owner, org):
    client = key_client(org) if who == "key" else client_for(owner)
    start = timezone.now() + timedelta(days=1)
    window = {
        "name": "upgrade",
        "kind": "maintenance",
        "recurrence": "once",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=1)).isoformat(),
        "all_monitors": True,
    }
    made = client.post("/api/v1/maintenance-windows/", window, format="json")
    assert made.status_code == 201, made.content
    listed = client.get("/api/v1/maintenance-windows/").json()["results"][0]
    for body in (made.json(), listed):
        if who == "key":
            assert (body["created_by"], body["created_by_key"]) == (None, _key_of(client))
        else:
            assert body["created_by"]["email"] == owner.email
            assert body["created_by_key"] is None


def test_the_key_is_still_named_after_it_is_renamed_and_purged(key_client, org, incident):
    client = key_client(org)
    client.post(_url(incident, "acknowledge"), {}, format="json")
    api_key_update(api_key=client.api_key, name="renamed")
    api_key_revoke(api_key=client.api_key)
    ApiKey.objects.filter(pk=client.api_key.pk).update(
        revoked_at=timezone.now() - timedelta(days=40)
    )
    assert api_keys_purge_dead() == 1
    incident.refresh_from_db()
    # Named as it was when it acted.
    assert incident.acknowledged_by_key == _key_of(client)


def test_the_console_shows_the_key_user_or_system(key_client, org, incident, django_user_model):
    client = key_client(org)
    client.post(_url(incident, "acknowledge"), {}, format="json")
    feed(incident.monitor, up())  # the system resolves it
    operator = django_user_model.objects.create_superuser(
        "op@example.test", "op@example.test", "pw"
    )
    console = Client()
    console.force_login(operator)
    page = console.get(f"/admin/incidents/incident/{incident.pk}/change/").content.decode()
    label = _label(client).replace('"', "&quot;")
    assert page.count(label) >= 2  # acknowledged by, and the timeline line
    assert "the system" in page  # resolved by
    events = console.get("/admin/incidents/incidentevent/").content.decode()
    assert label in events


def test_an_outsiders_key_cannot_act_on_the_incident(key_client, other_org, incident):
    outsider = key_client(other_org)
    for action in ("acknowledge", "resolve", "notes", "snooze"):
        payload = {"text": "x"} if action == "notes" else {}
        assert outsider.post(_url(incident, action), payload, format="json").status_code == 404
    incident.refresh_from_db()
    assert (incident.status, incident.acknowledged_by_key) == ("triggered", None)


def test_services_called_without_a_request_keep_the_user_argument(org, incident, member):
    """A user passed explicitly wins over a key (the key is recorded only when no user acts)."""
    key = ApiKey.objects.create(organization=org, name="k", prefix="hk_x", key_hash="h")
    services.incident_acknowledge(incident=incident, user=member, api_key=key)
    incident.refresh_from_db()
    assert (incident.acknowledged_by_id, incident.acknowledged_by_key) == (member.pk, None)
