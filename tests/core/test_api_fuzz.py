"""The API contract, fuzzed: Schemathesis generates requests for every operation of
`/api/schema/` (valid ones and, on purpose, invalid ones) and checks every answer against the
schema, twice: once as an organization's API key, once as a member's user token.

In-process, through the project's WSGI application (no live server): requests share the
test's database transaction, so nothing has to be truncated afterwards (a live server would
need a transactional test and its slow flush of every table), no port or second process is
needed on a busy 2-core machine, and a failure reproduces from the seed alone. What a live
server adds (gunicorn, sockets) is covered by the tests that start one.

Reproduce a failure: the report prints the seed and a curl line; rerun with the same
`FUZZ_SEED` (and `FUZZ_EXAMPLES`), e.g. `FUZZ_SEED=15 pytest tests/core/test_api_fuzz.py`.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, seed, settings
from schemathesis.config import SchemathesisConfig

from apps.plans.services import organization_change_plan
from apps.tenants import services
from apps.tenants.models import Role
from tests.factories import MembershipFactory, OrganizationFactory

SEED = int(os.environ.get("FUZZ_SEED", "15"))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))

# A schema says which requests are well formed; it cannot say which rows exist or which
# combinations a business rule allows (an unknown monitor's id, `until` before `since`, an
# incident already resolved, a time zone that does not exist). Such a schema-valid request is
# answered 400 or 409 in the error shape, which response_schema_conformance still checks.
ACCEPTED_FOR_VALID_DATA = ["2xx", 400, 401, 403, 404, 409, 429]


def _config(scheme: str, credential: str) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "auth": {"openapi": {scheme: {"api_key": credential}}},
            "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED_FOR_VALID_DATA}},
        }
    )


@pytest.fixture(params=["api_key", "token"])
def api_schema(request, db):
    from healthorch.wsgi import application

    org = OrganizationFactory(name="Fuzz", slug="fuzz")
    # The plan with every feature and the highest rate: a 402 or 429 would hide the rest.
    organization_change_plan(org=org, plan_code="enterprise", source="test")
    if request.param == "api_key":
        issued = services.api_key_create(org=org, name="fuzz", scopes=["read", "write"])
        config = _config("ApiKey", issued.secret)
    else:
        user = MembershipFactory(organization=org, role=Role.OWNER).user
        config = _config("tokenAuth", f"Token {services.user_token(user=user)}")

    # The WSGI handler closes the database connection after each request; here that would
    # end the test's own transaction (Django's test client disconnects it likewise).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/", application, config=config)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


# Billing's Checkout, Portal and overview answer 503 until Stripe is configured, and then talk
# to Stripe; tests/billing tries them against localstripe and signed events.
schema = schemathesis.pytest.from_fixture("api_schema").exclude(path_regex=r"^/(api/v1/)?billing")


@schema.parametrize()
@seed(SEED)
@settings(
    max_examples=EXAMPLES,
    deadline=None,  # no wall-clock bound: a busy machine must not fail the contract
    database=None,  # every run starts from the seed, not from examples saved by another
    derandomize=False,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_keeps_its_contract(case):
    # Every check Schemathesis has, on every response.
    case.call_and_validate()
