"""The shared cache unreachable: the API keeps answering from the database.

The cache here is Django's Redis cache pointed at a 127.0.0.1 port nobody listens on: a real
refused connection, the way a stopped Redis looks to the web processes. (The scenario with a
real Redis stopped and restarted under running processes is in test_redis_restart.py.)
"""

from __future__ import annotations

import logging
import socket

import pytest
import time_machine
from django.core.cache import cache
from django.test import override_settings

from apps.core import cache as resilient
from apps.plans.models import Limit, LimitOverride
from tests.factories import make_monitor

pytestmark = pytest.mark.django_db

MONITORS = "/api/v1/monitors/"
LOGIN = "/api/v1/auth/login"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cache_down():
    # Its own override, undone before the process's outage state is reset: the suite's
    # cache-clearing fixture must not meet the unreachable cache and note a new outage.
    unreachable = {
        "default": {
            "BACKEND": "apps.core.cache.ResilientRedisCache",
            "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    resilient.outage.recovered()
    with override_settings(CACHES=unreachable):
        yield
    resilient.outage.recovered()


def test_the_api_answers_from_the_database_and_each_tenant_sees_its_own(
    cache_down, key_client, org, other_org
):
    make_monitor(org, "ours", interval_seconds=3600)
    make_monitor(other_org, "theirs", interval_seconds=3600)
    ours, theirs = key_client(org), key_client(other_org)
    response = ours.get(MONITORS)
    assert response.status_code == 200, response.content
    assert [m["name"] for m in response.json()["results"]] == ["ours"]
    assert [m["name"] for m in theirs.get(MONITORS).json()["results"]] == ["theirs"]
    assert resilient.unavailable()


def test_the_outage_is_logged_once_not_per_request(cache_down, key_client, org, caplog):
    client = key_client(org)
    with caplog.at_level(logging.WARNING, logger="apps.core.cache"):
        for _ in range(20):
            assert client.get(MONITORS).status_code == 200
    warnings = [r for r in caplog.records if r.name == "apps.core.cache"]
    assert [r.getMessage() for r in warnings] == [
        "cache unreachable: reads fall back to the database, rate limits are not counted"
    ]


@pytest.mark.parametrize(("down", "statuses"), [(False, [200, 200, 429]), (True, [200, 200, 200])])
def test_rate_limits_fail_open_while_the_cache_is_down(request, key_client, org, down, statuses):
    if down:
        request.getfixturevalue("cache_down")
    LimitOverride.objects.create(organization=org, limit=Limit.API_REQUESTS_PER_MINUTE, value=2)
    client = key_client(org)
    with time_machine.travel("2026-03-01T10:00:05Z", tick=False):
        assert [client.get(MONITORS).status_code for _ in statuses] == statuses


@pytest.mark.parametrize(("down", "last"), [(False, 429), (True, 200)])
def test_sign_in_failures_are_not_counted_while_the_cache_is_down(request, anon, owner, down, last):
    """Fails open: sign-in keeps working for everyone; the outage is logged instead."""
    if down:
        request.getfixturevalue("cache_down")
    owner.set_password("right horse battery")
    owner.save()
    wrong = [
        anon.post(LOGIN, {"email": owner.email, "password": "nope"}, format="json")
        for _ in range(12)
    ]
    assert {r.status_code for r in wrong[:5]} == {401}
    right = anon.post(
        LOGIN, {"email": owner.email, "password": "right horse battery"}, format="json"
    )
    assert right.status_code == last


def test_the_cache_itself_misses_drops_and_refuses_to_count(cache_down):
    assert cache.get("k", "default") == "default"
    assert cache.get_many(["k"]) == {}
    assert cache.add("k", 1) is False
    cache.set("k", 1)
    cache.delete("k")
    with pytest.raises(resilient.CacheUnavailable):
        cache.incr("k")
