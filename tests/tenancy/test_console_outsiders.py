"""Every console page tried by an outsider, generated from the admin site's registry.

For each ModelAdmin built on the tenancy gate (TenantScopedAdmin), organization B's owner signs
in to the console and tries A's row (tests/tenancy/scene.py): the change, delete and history
pages answer 404 to GET and POST, the list shows none of A's rows, and A's rows are unchanged;
A's own owner opens the same change page (200), so the 404 is the gate's. Every other
ModelAdmin (operators only, or a library's) and every operators' page a ModelAdmin adds refuses
the outsider outright. tests/tenancy/test_route_guard.py checks the registry is all covered.
"""

from __future__ import annotations

import pytest
from django.test import Client

from apps.tenants.gate.admin import TenantScopedAdmin
from tests.tenancy import routes
from tests.tenancy.scene import build_scene
from tests.tenancy.test_outsiders import assert_nothing_of_a, snapshot

pytestmark = pytest.mark.django_db

ADMINS = routes.console_admins()
TENANT_ADMINS = [(label, a) for label, a in ADMINS if isinstance(a, TenantScopedAdmin)]
OTHER_ADMINS = [(label, a) for label, a in ADMINS if not isinstance(a, TenantScopedAdmin)]


def _console(user) -> Client:
    """A signed-in console session; members enter without Django's staff flag."""
    client = Client()
    client.force_login(user)
    return client


def _base(model_admin) -> str:
    opts = model_admin.model._meta
    return f"/admin/{opts.app_label}/{opts.model_name}/"


@pytest.fixture
def scene(org, owner):
    return build_scene(org, owner)


@pytest.mark.parametrize(("label", "model_admin"), TENANT_ADMINS, ids=[x[0] for x in TENANT_ADMINS])
def test_an_outsider_reaches_no_row_of_another_organization_in_the_console(
    label, model_admin, scene, owner, outsider
):
    obj = scene[label]
    base = _base(model_admin)
    before = snapshot(scene)
    client = _console(outsider)
    for page in ("change/", "delete/", "history/"):
        url = f"{base}{obj.pk}/{page}"
        assert client.get(url).status_code == 404, url
        assert client.post(url, {"name": "pwned", "post": "yes"}).status_code == 404, url
    listing = client.get(base)
    assert listing.status_code in (200, 403), base
    assert_nothing_of_a(listing, scene, base)
    assert snapshot(scene) == before, "an outsider's request changed A's rows"
    # The control: the same page is A's and opens for A's owner.
    assert _console(owner).get(f"{base}{obj.pk}/change/").status_code == 200


@pytest.mark.parametrize(("label", "model_admin"), OTHER_ADMINS, ids=[x[0] for x in OTHER_ADMINS])
def test_pages_for_operators_refuse_a_tenant_member(label, model_admin, outsider):
    client = _console(outsider)
    for page in ("", "add/"):
        assert client.get(f"{_base(model_admin)}{page}").status_code == 403, page


@pytest.mark.parametrize(("name", "url"), sorted(routes.CONSOLE_OPERATOR_PAGES.items()))
def test_the_operators_extra_pages_refuse_a_tenant_member(name, url, outsider):
    response = _console(outsider).get(url)
    assert response.status_code in (403, 404), (name, response.status_code)


OBJECT_PAGES = [
    (name, label, tail)
    for name, (label, tails) in sorted(routes.CONSOLE_OBJECT_PAGES.items())
    for tail in tails
]


@pytest.mark.parametrize(("name", "label", "tail"), OBJECT_PAGES, ids=[x[2] for x in OBJECT_PAGES])
def test_an_outsider_reaches_no_object_page_of_another_organization(
    name, label, tail, scene, owner, outsider
):
    model_admin = dict(ADMINS)[label]
    url = f"{_base(model_admin)}{scene[label].pk}/{tail}"
    before = snapshot(scene)
    client = _console(outsider)
    assert client.get(url).status_code == 404, url
    assert client.post(url, {"note": "pwned", "minutes": "60"}).status_code == 404, url
    assert snapshot(scene) == before, "an outsider's request changed A's rows"
    # The control: A's owner reaches the same page (a POST acts, so the page answers a redirect).
    assert _console(owner).post(url, {"note": "ours", "minutes": "60"}).status_code == 302


def test_the_dashboard_and_app_pages_show_an_outsider_nothing_of_another_organization(
    scene, outsider
):
    client = _console(outsider)
    for url in ["/admin/", *sorted({_base(a).rsplit("/", 2)[0] + "/" for _l, a in TENANT_ADMINS})]:
        response = client.get(url)
        assert response.status_code == 200, url
        assert_nothing_of_a(response, scene, url)
