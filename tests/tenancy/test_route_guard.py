"""The route guard: nothing ships unguarded.

Every route of the API, billing and status pages (Django's URL resolver) and every console page
(the admin site's registered ModelAdmins and its own pages) is either built on the tenancy gate
with an outsider case in tests/tenancy/routes.py and a scene row in tests/tenancy/scene.py, or
on the short public list with its reason. A new endpoint that is neither fails here; the
outsider tests themselves are tests/tenancy/test_outsiders.py and test_console_outsiders.py.
"""

from __future__ import annotations

import pytest

from apps.core.admin import OperatorOnlyAdmin
from apps.tenants.gate.admin import TenantScopedAdmin
from apps.tenants.gate.api import TenantScopedMixin
from tests.tenancy import routes
from tests.tenancy.scene import BUILDERS

#: third-party ModelAdmins: Django's own permissions keep tenant members out (tried by the
#: outsider in test_console_outsiders.py); none of them holds a tenant's monitoring data
THIRD_PARTY_APPS = ("auth", "authtoken", "django_celery_beat", "djstripe")


def _classify(route: routes.Route) -> list[str]:
    tables = [
        ("object", routes.OBJECT_ROUTES),
        ("organization", routes.ORGANIZATION_ROUTES),
        ("public", routes.PUBLIC_ROUTES),
    ]
    return [kind for kind, table in tables if route.name in table]


def test_every_route_is_either_tried_by_the_outsider_or_public_with_a_reason():
    unlisted, twice = [], []
    for route in routes.product_routes():
        kinds = _classify(route)
        if not kinds:
            unlisted.append(f"/{route.path} ({route.name})")
        elif len(kinds) > 1:
            twice.append(f"{route.name}: {kinds}")
    assert not unlisted, (
        "routes without an outsider case: add each to OBJECT_ROUTES or ORGANIZATION_ROUTES in "
        f"tests/tenancy/routes.py (or PUBLIC_ROUTES with a reason): {unlisted}"
    )
    assert not twice, twice


def test_every_route_that_reaches_tenant_data_is_built_on_the_gate():
    ungated = [
        f"{route.name} ({route.view_class or route.pattern.callback})"
        for route in routes.product_routes()
        if route.name not in routes.PUBLIC_ROUTES
        and not (route.view_class and issubclass(route.view_class, TenantScopedMixin))
    ]
    assert not ungated, f"not built on apps.tenants.gate.api (TenantAPIView, ...): {ungated}"


def test_the_tables_name_only_routes_that_exist_and_models_the_scene_builds():
    names = {route.name for route in routes.product_routes()}
    listed = set(routes.OBJECT_ROUTES) | routes.ORGANIZATION_ROUTES | set(routes.PUBLIC_ROUTES)
    assert not listed - names, f"stale entries in tests/tenancy/routes.py: {listed - names}"
    assert not routes.NAMED_BY_KIND - set(routes.OBJECT_ROUTES)
    missing = set(routes.OBJECT_ROUTES.values()) - set(BUILDERS)
    assert not missing, f"no builder in tests/tenancy/scene.py for {missing}"
    for reason in routes.PUBLIC_ROUTES.values():
        assert reason.strip(), "every public route says why"


def test_every_object_route_names_its_object_in_the_url():
    for route in routes.gated_routes():
        if route.name in routes.OBJECT_ROUTES:
            assert route.kwarg is not None, f"{route.name} names no object"
        else:
            assert route.kwarg is None, f"{route.name} names an object: add it to OBJECT_ROUTES"


@pytest.mark.parametrize(("label", "model_admin"), routes.console_admins(), ids=lambda v: str(v))
def test_every_console_page_is_gated_or_for_operators(label, model_admin):
    if isinstance(model_admin, TenantScopedAdmin):
        assert label in BUILDERS, (
            f"{label} is shown to tenants in the console: give it a builder in "
            "tests/tenancy/scene.py so the outsider tries its pages"
        )
    else:
        assert isinstance(model_admin, OperatorOnlyAdmin) or label.startswith(
            tuple(f"{app}." for app in THIRD_PARTY_APPS)
        ), f"{label}: neither TenantScopedAdmin nor OperatorOnlyAdmin"


def test_the_consoles_own_pages_are_listed_with_a_reason():
    pages = set(routes.console_site_pages())
    unlisted = pages - set(routes.CONSOLE_PUBLIC)
    assert not unlisted, f"console pages without a reason in CONSOLE_PUBLIC: {unlisted}"
    assert not set(routes.CONSOLE_PUBLIC) - pages, "stale entries in CONSOLE_PUBLIC"
    extra = {name for _label, name in routes.console_admin_pages()}
    tried = set(routes.CONSOLE_OPERATOR_PAGES) | set(routes.CONSOLE_OBJECT_PAGES)
    unlisted = extra - tried
    assert not unlisted, f"ModelAdmin pages the outsider does not try: {unlisted}"
    assert not set(routes.CONSOLE_OPERATOR_PAGES) - extra, "stale CONSOLE_OPERATOR_PAGES"
    assert not set(routes.CONSOLE_OBJECT_PAGES) - extra, "stale CONSOLE_OBJECT_PAGES"
