"""Who asked for a healing run: a user, an API key (by name and prefix), or the engine; on the
attempt, its timeline line, the audit log, the API and the console."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.audit.models import AuditEntry
from apps.healing.models import AttemptStatus, HealingAttempt
from apps.incidents.models import EventKind, IncidentEvent
from tests.healing.test_api import _suggested_incident

pytestmark = pytest.mark.django_db


def _heal(client, incident):
    return client.post(f"/api/v1/incidents/{incident.pk}/heal")


def _lines(incident):
    return IncidentEvent.objects.filter(incident=incident, kind=EventKind.HEALING).order_by("id")


def test_an_api_key_running_the_suggestion_is_recorded(
    org, key_client, flaky, work, capture, django_user_model
):
    incident = _suggested_incident(org, flaky)
    client = key_client(org)
    ref = {"id": str(client.api_key.pk), "name": "test", "prefix": client.api_key.prefix}
    label = f'API key "test" ({client.api_key.prefix})'
    with capture(execute=True):
        response = _heal(client, incident)
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["requested_by"], body["requested_by_key"]) == (None, ref)
    requested = _lines(incident).last()
    assert (requested.data["step"], requested.actor_id, requested.actor_key) == (
        "requested",
        None,
        ref,
    )
    assert requested.note.startswith(f"Run by {label}:")
    entry = AuditEntry.objects.get(action="healing.run")
    assert (entry.actor_kind, entry.actor_label) == ("api_key", label)
    attempt = HealingAttempt.objects.get(pk=body["id"])
    assert attempt.requested_by_key == ref
    # The console says who asked.
    operator = Client()
    operator.force_login(django_user_model.objects.create_superuser("op@x.test", "op@x.test", "pw"))
    page = operator.get(f"/admin/healing/healingattempt/{attempt.pk}/change/").content.decode()
    assert label.replace('"', "&quot;") in page


def test_a_user_running_it_is_recorded_as_the_user(org, member, client_for, flaky, work, capture):
    incident = _suggested_incident(org, flaky)
    with capture(execute=True):
        body = _heal(client_for(member), incident).json()
    assert (body["requested_by"], body["requested_by_key"]) == (member.pk, None)
    assert _lines(incident).last().note.startswith(f"Run by {member.email}:")


def test_the_engine_deciding_alone_records_no_one(org, flaky):
    incident = _suggested_incident(org, flaky)
    attempt = HealingAttempt.objects.get(incident=incident)
    assert attempt.status == AttemptStatus.SUGGESTED
    assert (attempt.requested_by_id, attempt.requested_by_key) == (None, None)
    decided = _lines(incident).first()
    assert (decided.actor_id, decided.actor_key) == (None, None)


def test_an_outsiders_key_cannot_heal_the_incident(org, other_org, key_client, flaky, work):
    incident = _suggested_incident(org, flaky)
    assert _heal(key_client(other_org), incident).status_code == 404
    assert HealingAttempt.objects.get(incident=incident).requested_by_key is None
