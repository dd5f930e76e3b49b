"""Every gated route of the API tried by an outsider, generated from the URL resolver.

Organization A (acme) has a row of everything (tests/tenancy/scene.py). Organization B's owner,
by token and by B's API key, tries every method of every route:

- a route that names one of A's objects answers 404 (never 403: existence is not revealed)
  and A's rows are unchanged;
- a route that answers for the caller's organization is 404 when B names A in X-Organization,
  and B's own answer carries nothing of A's;
- a signed-in user with no membership is refused everywhere.

A's own owner reading the same object gets 200, so the 404s are the gate's and not a wrong
URL. Which routes exist and which object each names comes from tests/tenancy/routes.py, whose
completeness tests/tenancy/test_route_guard.py checks.
"""

from __future__ import annotations

import json
import uuid

import pytest
from django.forms.models import model_to_dict
from django.urls import reverse

from apps.plans.services import organization_change_plan
from tests.factories import UserFactory
from tests.tenancy import routes
from tests.tenancy.scene import MARK, build_scene

pytestmark = pytest.mark.django_db

#: a valid body for the routes that read it before looking the object up, so the request
#: reaches the lookup; any other write gets {"name": ...}
BODIES = {
    "incident-acknowledge": {"note": "mine now"},
    "incident-resolve": {"note": "fixed"},
    "incident-notes": {"text": "a note"},
    "incident-snooze": {"minutes": 30},
    "incident-updates": {"status": "identified", "message": "m"},
    "incident-postmortem": {"body": "b"},
    "member-detail": {"role": "viewer"},
}

GATED = routes.gated_routes()
ALL_METHODS = ["get", "post", "put", "patch", "delete"]


@pytest.fixture
def scene(org, owner):
    return build_scene(org, owner)


OTLP_ROUTES = {"otlp-logs", "otlp-metrics"}

#: query strings some routes take to answer quickly: the live tail would stream for 25 s
QUERIES = {"logs-tail": "?seconds=1"}


def _url(route: routes.Route, scene) -> str:
    if route.kwarg is None:
        return reverse(route.name) + QUERIES.get(route.name, "")
    obj = scene[routes.OBJECT_ROUTES[route.name]]
    value = obj.kind if route.kwarg == "kind" else obj.pk
    return reverse(route.name, kwargs={route.kwarg: value})


def _call(client, method: str, url: str, route: routes.Route | None = None, **headers):
    if method in ("get", "delete"):
        return getattr(client, method)(url, **headers)
    body = BODIES.get(route.name if route else "", {"name": "pwned"})
    return getattr(client, method)(
        url, json.dumps(body), content_type="application/json", **headers
    )


def _twin(route: routes.Route) -> str:
    """The same route naming an object that exists nowhere."""
    return reverse(route.name, kwargs={route.kwarg: uuid.uuid4()})


def _assert_refused_as_if_absent(client, method: str, route: routes.Route, url: str, what: str):
    """404; or, where the view refuses the method, the caller (role, scope, plan) or the body
    before it looks anything up, exactly the answer an id that exists nowhere gets: no
    oracle."""
    response = _call(client, method, url, route)
    if response.status_code != 404:
        twin = _call(client, method, _twin(route), route)
        assert response.status_code in (400, 402, 403, 405), (what, response.status_code)
        assert (response.status_code, response.json()) == (twin.status_code, twin.json()), what
    return response


def _secrets(scene) -> list[str]:
    """What identifies A's data in a response: its UUIDs, its slug and the scene's mark."""
    found = [MARK, scene["org"].slug]
    for value in scene.values():
        pk = getattr(value, "pk", None)
        if pk is not None and not isinstance(pk, int):
            found.append(str(pk))
    return found


def assert_nothing_of_a(response, scene, what: str) -> None:
    # 503 is B's own billing answering that Stripe is not configured here
    assert response.status_code != 500, what
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    body = raw.decode(errors="replace")
    leaked = [s for s in _secrets(scene) if s in body]
    assert not leaked, (what, leaked)


def snapshot(scene) -> dict:
    return {
        label: model_to_dict(type(obj).objects.get(pk=obj.pk))
        for label, obj in scene.items()
        if hasattr(obj, "_meta")
    }


def _outsiders(outsider, other_org, client_for, key_client):
    return {"token": client_for(outsider), "key": key_client(other_org)}


@pytest.mark.parametrize("route", GATED, ids=lambda r: r.name)
def test_an_outsider_reaches_nothing_of_another_organization(
    route, scene, org, owner, outsider, other_org, client_for, key_client
):
    organization_change_plan(org=other_org, plan_code="business", source="test")
    url = _url(route, scene)
    before = snapshot(scene)
    by_id = route.name in routes.OBJECT_ROUTES and route.name not in routes.NAMED_BY_KIND
    for how, client in _outsiders(outsider, other_org, client_for, key_client).items():
        # An object's URL is tried with every method, served or not (405 as for no object).
        for method in ALL_METHODS if by_id else route.methods:
            what = f"{how} {method.upper()} {url}"
            if by_id:
                response = _assert_refused_as_if_absent(client, method, route, url, what)
                assert_nothing_of_a(response, scene, what)
            # Naming A's organization outright is a 404 on every route, by token or by key.
            named = _call(client, method, url, route, HTTP_X_ORGANIZATION=org.slug)
            assert named.status_code == 404, (f"{what} naming {org.slug}", named.status_code)
            assert_nothing_of_a(named, scene, f"{what} naming {org.slug}")
        # B's own answer to a read carries nothing of A's.
        if "get" in route.methods:
            assert_nothing_of_a(client.get(url), scene, f"{how} GET {url}")
    assert snapshot(scene) == before, "an outsider's request changed A's rows"
    if "get" in route.methods and route.name in routes.OBJECT_ROUTES:
        # The control: the same URL is A's own and answers its owner.
        assert client_for(owner).get(url).status_code == 200, url


@pytest.mark.parametrize("route", GATED, ids=lambda r: r.name)
def test_a_user_without_membership_is_refused(route, scene, client_for):
    stranger = client_for(UserFactory())
    url = _url(route, scene)
    for method in route.methods:
        response = _call(stranger, method, url, route)
        assert response.status_code in (403, 404), (method, url, response.status_code)
        # OTLP's receivers answer in the protocol's own shape (google.rpc.Status), as its
        # exporters expect; everything else in the API's one error shape.
        body = response.json()
        assert body["message"] if route.name in OTLP_ROUTES else body["error"], body
        assert_nothing_of_a(response, scene, f"{method} {url}")


def test_an_outsider_removes_nothing_through_the_dependency_route(
    scene, outsider, client_for, owner
):
    """The one route served only by DELETE: its control is A's owner removing it after."""
    dependency = scene["incidents.MonitorDependency"]
    url = reverse("monitor-dependency-detail", kwargs={"pk": dependency.pk})
    assert client_for(outsider).delete(url).status_code == 404
    assert client_for(owner).delete(url).status_code == 204
