"""An incident's page in the console: acknowledge, resolve, add a note and snooze from buttons
on the page, through the incidents services (actor recorded, audited), for the roles that may
write; the cause and the timeline read as sentences and small tables, not JSON."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditEntry
from apps.incidents import services
from apps.incidents.models import IncidentEvent, MaintenanceWindow
from tests.console import support
from tests.factories import make_monitor

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(org):
    monitor = make_monitor(org, "checkout")
    return support.incident(
        org,
        monitor=monitor,
        cause={
            "rule": "service_down",
            "outcome": "down",
            "status_code": 503,
            "error_class": "http_status",
            "checked_at": "2026-12-07T10:00:00+00:00",
            "result_id": 42,
            "response_time_ms": 812,
        },
    )


def _act(client, incident, action, **data):
    return client.post(f"/admin/incidents/incident/{incident.pk}/act/{action}/", data)


def _page(client, incident) -> str:
    response = client.get(f"/admin/incidents/incident/{incident.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_member_acknowledges_then_resolves_from_the_page(incident, member):
    client = support.login(member)
    page = _page(client, incident)
    assert 'value="Acknowledge"' in page
    assert 'value="Resolve"' in page

    response = _act(client, incident, "acknowledge")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/incidents/incident/{incident.pk}/change/"
    incident.refresh_from_db()
    assert incident.status == "acknowledged"
    assert incident.acknowledged_by == member
    assert AuditEntry.objects.filter(action="incident.acknowledged", actor_user=member).exists()
    page = _page(client, incident)
    assert 'value="Acknowledge"' not in page  # done already
    assert f"Acknowledged by {member.email}." in page

    _act(client, incident, "resolve", note="rolled back the deploy")
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert incident.resolved_by == member
    assert AuditEntry.objects.filter(action="incident.resolved", actor_user=member).exists()
    page = _page(client, incident)
    assert f"Resolved by {member.email}." in page
    assert "rolled back the deploy" in page
    assert 'value="Resolve"' not in page


def test_acknowledging_twice_says_why_and_changes_nothing(incident, member):
    client = support.login(member)
    _act(client, incident, "acknowledge")
    response = _act(client, incident, "acknowledge")
    assert response.status_code == 302
    messages = [str(m) for m in client.get(response["Location"]).context["messages"]]
    assert any("Nothing was changed" in m and "acknowledged" in m for m in messages)
    assert IncidentEvent.objects.filter(incident=incident, kind="acknowledged").count() == 1


def test_a_note_goes_on_the_timeline_with_its_author(incident, member):
    client = support.login(member)
    _act(client, incident, "note", note="looking at the load balancer")
    event = IncidentEvent.objects.get(incident=incident, kind="note")
    assert event.actor == member
    assert event.note == "looking at the load balancer"
    assert f"Note added by {member.email}." in _page(client, incident)


def test_an_empty_note_is_refused(incident, member):
    _act(support.login(member), incident, "note", note="   ")
    assert not IncidentEvent.objects.filter(incident=incident, kind="note").exists()


def test_snoozing_silences_the_monitor_for_the_chosen_time(incident, member):
    client = support.login(member)
    _act(client, incident, "snooze", minutes="240")
    window = MaintenanceWindow.objects.get(incident=incident)
    assert window.kind == "silence"
    assert (window.ends_at - window.starts_at).total_seconds() == 240 * 60
    assert window.created_by == member
    incident.refresh_from_db()
    assert incident.is_open
    assert "Snoozed until" in _page(client, incident)


def test_a_snooze_of_a_length_not_offered_is_refused(incident, member):
    _act(support.login(member), incident, "snooze", minutes="99999")
    assert not MaintenanceWindow.objects.filter(incident=incident).exists()


def test_a_viewer_sees_no_buttons_and_a_forged_post_is_refused(incident, viewer):
    client = support.login(viewer)
    page = _page(client, incident)
    assert 'id="incident-actions"' not in page
    for action in ("acknowledge", "resolve", "note", "snooze"):
        assert _act(client, incident, action, note="x", minutes="60").status_code == 403
    incident.refresh_from_db()
    assert incident.status == "triggered"
    assert not IncidentEvent.objects.filter(incident=incident).exists()


def test_a_get_or_an_unknown_action_changes_nothing(incident, member):
    client = support.login(member)
    url = f"/admin/incidents/incident/{incident.pk}/act/acknowledge/"
    assert client.get(url).status_code == 405
    assert _act(client, incident, "delete").status_code == 404
    incident.refresh_from_db()
    assert incident.status == "triggered"


def test_another_organizations_incident_is_404_to_every_button(incident, outsider):
    client = support.login(outsider)
    for action in ("acknowledge", "resolve", "note", "snooze"):
        assert _act(client, incident, action, note="x", minutes="60").status_code == 404
    incident.refresh_from_db()
    assert incident.status == "triggered"


def test_the_cause_reads_as_a_sentence_and_a_table_not_json(incident, member):
    page = _page(support.login(member), incident)
    assert (
        "Opened because the monitor was down at the check of 2026-12-07 10:00:00 UTC: "
        "it answered down, HTTP 503, http status." in page
    )
    assert '<th scope="row">response time (ms)</th><td>812</td>' in page
    assert "&quot;rule&quot;" not in page
    assert '{"rule"' not in page


def test_an_api_keys_action_names_the_key(incident, org):
    from apps.tenants.models import ApiKey

    key = ApiKey.objects.create(organization=org, name="deploy bot", prefix="hk_ab12cd34")
    services.incident_acknowledge(incident=incident, user=None, api_key=key)
    page = _page(support.operator_client(), incident)
    assert "Acknowledged by API key &quot;deploy bot&quot; (hk_ab12cd34)." in page


def test_the_page_costs_the_same_queries_with_many_timeline_lines(incident, member):
    client = support.login(member)
    services.incident_note(incident=incident, user=member, text="one")
    _page(client, incident)
    with CaptureQueriesContext(connection) as before:
        _page(client, incident)
    for i in range(15):
        services.incident_note(incident=incident, user=member, text=f"note {i}")
    with CaptureQueriesContext(connection) as after:
        _page(client, incident)
    assert len(after) == len(before)
