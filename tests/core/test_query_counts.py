"""An authenticated API request costs at most 3 queries before the view's own work.

GET /api/v1/organization does no work of its own (the organization and its plan are loaded by
the tenancy gate), so its whole query count is the authentication + tenancy + plan cost. The
plan's entitlements come from the cache; a cold cache costs one more query, once per
organization per five minutes (test_a_cold_entitlement_cache_costs_one_query).
"""

import pytest
from django.test import Client

from apps.plans.metering import api_usage
from apps.plans.selectors import _local
from apps.tenants import services
from tests.factories import MembershipFactory
from tests.isolation import clear_cache

pytestmark = pytest.mark.django_db
URL = "/api/v1/organization"


def _warm(client) -> None:
    """One request fills the entitlement cache and records the key's use; flush the
    API-request tally so no periodic flush lands inside the measured request."""
    assert client.get(URL).status_code == 200
    api_usage.flush()


def test_api_key_request_costs_one_query(key_client, org, django_assert_num_queries):
    client = key_client(org)
    _warm(client)
    with django_assert_num_queries(1):  # key + organization + plan, one join
        assert client.get(URL).status_code == 200


def test_token_request_costs_two_queries(client_for, member, django_assert_num_queries):
    client = client_for(member)
    _warm(client)
    with django_assert_num_queries(2):  # token+user, membership+organization+plan
        assert client.get(URL).status_code == 200


def test_session_request_costs_three_queries(member, django_assert_num_queries):
    client = Client()
    client.force_login(member)
    _warm(client)
    with django_assert_num_queries(3):  # session, user, membership+organization+plan
        assert client.get(URL).status_code == 200


def test_a_cold_entitlement_cache_costs_one_query(key_client, org, django_assert_num_queries):
    client = key_client(org)
    _warm(client)
    clear_cache()
    _local.clear()
    with django_assert_num_queries(2):  # the key, then the organization's limit overrides
        assert client.get(URL).status_code == 200


def test_member_list_does_not_grow_with_members(client_for, owner, org, django_assert_num_queries):
    client = client_for(owner)
    MembershipFactory.create_batch(1, organization=org)
    _warm(client)
    with django_assert_num_queries(4):  # auth 2 + count + page (users joined)
        client.get("/api/v1/members/")
    MembershipFactory.create_batch(20, organization=org)
    with django_assert_num_queries(4):
        client.get("/api/v1/members/")


def test_api_key_list_does_not_grow_with_keys(client_for, owner, org, django_assert_num_queries):
    client = client_for(owner)
    _warm(client)
    for i in range(3):
        services.api_key_create(org=org, name=f"k{i}", scopes=["read"], created_by=owner)
    with django_assert_num_queries(4):
        client.get("/api/v1/api-keys/")
    for i in range(20):
        services.api_key_create(org=org, name=f"m{i}", scopes=["read"], created_by=owner)
    with django_assert_num_queries(4):
        client.get("/api/v1/api-keys/")
