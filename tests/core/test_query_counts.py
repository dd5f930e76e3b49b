"""An authenticated API request costs at most 3 queries before the view's own work.

GET /api/v1/organization does no work of its own (the organization is already loaded by
the tenancy gate), so its whole query count is the authentication + tenancy cost.
"""

import pytest
from django.test import Client

from apps.tenants import services

pytestmark = pytest.mark.django_db
URL = "/api/v1/organization"


def test_api_key_request_costs_one_query(key_client, org, django_assert_num_queries):
    client = key_client(org)
    client.get(URL)  # first use writes last_used_at once
    with django_assert_num_queries(1):
        assert client.get(URL).status_code == 200


def test_token_request_costs_two_queries(client_for, member, django_assert_num_queries):
    client = client_for(member)
    with django_assert_num_queries(2):  # token+user, membership+organization
        assert client.get(URL).status_code == 200


def test_session_request_costs_three_queries(member, django_assert_max_num_queries):
    client = Client()
    client.force_login(member)
    with django_assert_max_num_queries(3):  # session, user, membership+organization
        assert client.get(URL).status_code == 200


def test_member_list_does_not_grow_with_members(client_for, owner, org, django_assert_num_queries):
    from tests.factories import MembershipFactory

    client = client_for(owner)
    MembershipFactory.create_batch(3, organization=org)
    with django_assert_num_queries(4):  # auth 2 + count + page (users joined)
        client.get("/api/v1/members/")
    MembershipFactory.create_batch(20, organization=org)
    with django_assert_num_queries(4):
        client.get("/api/v1/members/")


def test_api_key_list_does_not_grow_with_keys(client_for, owner, org, django_assert_num_queries):
    client = client_for(owner)
    for i in range(3):
        services.api_key_create(org=org, name=f"k{i}", scopes=["read"], created_by=owner)
    with django_assert_num_queries(4):
        client.get("/api/v1/api-keys/")
    for i in range(20):
        services.api_key_create(org=org, name=f"m{i}", scopes=["read"], created_by=owner)
    with django_assert_num_queries(4):
        client.get("/api/v1/api-keys/")
