"""Shared fixtures: an organization with an owner, an admin, a member and a viewer, and an
outsider who owns a second organization. Every endpoint is tried by the outsider too."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.plans.services import organization_change_plan
from apps.tenants import services
from apps.tenants.models import Role
from tests.factories import MembershipFactory, OrganizationFactory, make_monitor
from tests.support import serve_smtp

# The broker namespace, Celery app restore and per-process cache prefix every test gets; the
# browser tests' verdict on a missing Chromium (fail in CI, skip loudly on a laptop).
pytest_plugins = ["tests.isolation", "tests.browser.chromium"]


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttle counters and entitlements live in the caches; each test starts with none, and
    with the shared cache taken as reachable (a slow answer in an earlier test of the process
    may have noted an outage, which would make this one's limits fail open)."""
    from apps.core.cache import outage
    from apps.plans.selectors import _local
    from tests.isolation import clear_cache

    outage.recovered()
    clear_cache()
    _local.clear()
    yield
    clear_cache()
    _local.clear()
    outage.recovered()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The default plans exist even in a reused test database that a transactional test
    truncated on a previous run."""
    from apps.plans.services import plans_ensure_defaults

    with django_db_blocker.unblock():
        plans_ensure_defaults()


@pytest.fixture(autouse=True)
def _seeded_plans(request):
    """Transactional tests truncate every table, data-migration rows included: re-seed."""
    marker = request.node.get_closest_marker("django_db")
    if marker and marker.kwargs.get("transaction"):
        request.getfixturevalue("transactional_db")
        from apps.plans.services import plans_ensure_defaults

        plans_ensure_defaults()


@pytest.fixture(autouse=True)
def _fresh_usage_buffer():
    """API-request counts buffered by one test must not be flushed into the next one."""
    from apps.plans.metering import api_usage

    api_usage.discard()
    yield
    api_usage.discard()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Real hashing costs ~0.25 s per password; tests check behaviour, not PBKDF2."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def org(db):
    return OrganizationFactory(name="Acme", slug="acme")


@pytest.fixture
def other_org(db):
    return OrganizationFactory(name="Globex", slug="globex")


def _member(org, role):
    return MembershipFactory(organization=org, role=role).user


@pytest.fixture
def owner(org):
    return _member(org, Role.OWNER)


@pytest.fixture
def admin_user(org):
    return _member(org, Role.ADMIN)


@pytest.fixture
def member(org):
    return _member(org, Role.MEMBER)


@pytest.fixture
def viewer(org):
    return _member(org, Role.VIEWER)


@pytest.fixture
def outsider(other_org):
    return _member(other_org, Role.OWNER)


# --- shared by several apps' tests (one copy each) --------------------------------------


@pytest.fixture
def eager_tasks():
    """Celery tasks run in the calling thread while the test lasts (the app's setting restored)."""
    from healthorch.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def pro(org):
    """The organization on the pro plan (integrations, policies, status pages, SLA reports)."""
    organization_change_plan(org=org, plan_code="pro", source="test")
    return org


@pytest.fixture
def business(org):
    """The organization on the business plan (audit log, anomaly-based healing)."""
    organization_change_plan(org=org, plan_code="business", source="test")
    return org


@pytest.fixture
def operator(django_user_model):
    """A platform operator: a superuser, who sees every organization in the console."""
    return django_user_model.objects.create_superuser("op@example.test", "op@example.test", "pw")


def console(user) -> Client:
    """A signed-in console session. Tenant members are given the staff flag, as a member who
    uses the console has; operators stay as they are."""
    if not user.is_superuser and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def mailbox(settings):
    """A real SMTP server (aiosmtpd) on a free 127.0.0.1 port that Django's mail goes to."""
    settings.HEALTHORCH_PUBLIC_URL = "http://healthorch.test"
    with serve_smtp(settings) as box:
        yield box


@pytest.fixture
def job(org):
    """A heartbeat monitor expecting a ping every hour (5 minutes' grace); one failure is
    down."""
    config = {"period_seconds": 3600, "grace_seconds": 300, "timezone": "UTC"}
    return make_monitor(org, "backup", kind="heartbeat", config=config, failure_threshold=1)


@pytest.fixture
def client_for() -> Callable[..., APIClient]:
    """An API client authenticated with the user's DRF token."""

    def make(user, org_slug: str | None = None) -> APIClient:
        client = APIClient()
        client.credentials(
            HTTP_AUTHORIZATION=f"Token {services.user_token(user=user)}",
            **({"HTTP_X_ORGANIZATION": org_slug} if org_slug else {}),
        )
        return client

    return make


@pytest.fixture
def key_client() -> Callable[..., APIClient]:
    """An API client authenticated with a fresh API key of the organization."""

    def make(org, scopes=("read", "write")) -> APIClient:
        issued = services.api_key_create(org=org, name="test", scopes=list(scopes))
        client = APIClient()
        client.credentials(HTTP_X_API_KEY=issued.secret)
        client.api_key = issued.api_key
        client.secret = issued.secret
        return client

    return make


@pytest.fixture
def anon() -> APIClient:
    return APIClient()
