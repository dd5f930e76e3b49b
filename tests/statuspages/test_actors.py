"""Who wrote an incident update or a postmortem: a user, or an API key by name and prefix; in
the API and the console. (Updates and postmortems are always written by someone: no system
case.)"""

from __future__ import annotations

import pytest
from django.test import Client

from apps.statuspages.models import IncidentUpdate, Postmortem
from tests.factories import make_monitor
from tests.statuspages.conftest import make_incident

pytestmark = pytest.mark.django_db


def _write(client, incident):
    update = client.post(
        f"/api/v1/incidents/{incident.pk}/updates",
        {"status": "investigating", "message": "looking"},
        format="json",
    )
    postmortem = client.put(
        f"/api/v1/incidents/{incident.pk}/postmortem", {"body": "The disk."}, format="json"
    )
    assert (update.status_code, postmortem.status_code) == (201, 200), update.content
    listed = client.get(f"/api/v1/incidents/{incident.pk}/updates").json()[0]
    read = client.get(f"/api/v1/incidents/{incident.pk}/postmortem").json()
    return [update.json(), listed, postmortem.json(), read]


def test_an_api_key_is_the_author(pro, key_client, eager_tasks, django_user_model):
    incident = make_incident(make_monitor(pro))
    client = key_client(pro)
    ref = {"id": str(client.api_key.pk), "name": "test", "prefix": client.api_key.prefix}
    for body in _write(client, incident):
        assert (body["author"], body["author_key"]) == (None, ref)
    operator = Client()
    operator.force_login(django_user_model.objects.create_superuser("op@x.test", "op@x.test", "pw"))
    label = f"API key &quot;test&quot; ({client.api_key.prefix})"
    update = IncidentUpdate.objects.get(incident=incident)
    assert label in operator.get("/admin/statuspages/incidentupdate/").content.decode()
    page = f"/admin/statuspages/incidentupdate/{update.pk}/change/"
    assert label in operator.get(page).content.decode()
    postmortem = Postmortem.objects.get(incident=incident)
    page = f"/admin/statuspages/postmortem/{postmortem.pk}/change/"
    assert label in operator.get(page).content.decode()


def test_a_user_is_the_author(pro, member, client_for, eager_tasks):
    incident = make_incident(make_monitor(pro))
    for body in _write(client_for(member), incident):
        assert (body["author"], body["author_key"]) == (member.pk, None)


def test_a_user_rewriting_a_keys_postmortem_becomes_its_author(
    pro, member, key_client, client_for, eager_tasks
):
    incident = make_incident(make_monitor(pro))
    _write(key_client(pro), incident)
    client_for(member).put(
        f"/api/v1/incidents/{incident.pk}/postmortem", {"body": "Rewritten."}, format="json"
    )
    postmortem = Postmortem.objects.get(incident=incident)
    assert (postmortem.author_id, postmortem.author_key) == (member.pk, None)


def test_an_outsiders_key_cannot_write_on_the_incident(pro, other_org, key_client):
    incident = make_incident(make_monitor(pro))
    outsider = key_client(other_org)
    url = f"/api/v1/incidents/{incident.pk}/updates"
    body = {"status": "investigating", "message": "x"}
    assert outsider.post(url, body, format="json").status_code == 404
    assert IncidentUpdate.objects.filter(incident=incident).count() == 0
