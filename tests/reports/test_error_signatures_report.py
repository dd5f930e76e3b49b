"""The error report's log part: signatures mined from error lines, with counts, trends, the
change against the window before and the "new" flag; paged; one tenant's signatures only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from apps.telemetry import services
from apps.telemetry.storage import logs_write
from tests.reports.support import make_monitor

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 3, 12, 30, tzinfo=UTC)
URL = "/api/v1/reports/errors"


@pytest.fixture
def travel():
    with time_machine.travel(NOW, tick=False):
        yield


def write(org, source, message, at, n=1):
    logs_write(
        org_id=org.pk,
        rows=[(at, source, "error", message.format(i=i), {}, "", "") for i in range(n)],
    )


@pytest.fixture
def mined(pro_org, travel):
    """api: 'db timeout' 4 lines two days ago (the window before) and 6 in the last day, 3 of
    them this hour; 'card declined' 2 lines an hour ago (new); worker: 1 line."""
    write(pro_org, "api", "db timeout after {i} ms", NOW - timedelta(hours=30), n=4)
    write(pro_org, "api", "db timeout after {i} ms", NOW - timedelta(hours=3), n=3)
    write(pro_org, "api", "db timeout after {i} ms", NOW, n=3)
    write(pro_org, "api", "card {i} declined", NOW - timedelta(hours=1), n=2)
    write(pro_org, "worker", "job {i} lost", NOW - timedelta(hours=2))
    services.error_signatures_mine(now=NOW)
    return pro_org


def test_signatures_come_with_counts_trend_change_and_new(client_for, member, mined):
    body = client_for(member).get(URL).json()
    assert body["groups"] == []  # the check part is still there, unchanged
    sigs = {s["template"]: s for s in body["signatures"]}
    assert [s["template"] for s in body["signatures"]] == [
        "db timeout after <NUM> ms",
        "card <NUM> declined",
        "job <NUM> lost",
    ]
    timeout = sigs["db timeout after <NUM> ms"]
    assert (timeout["source"], timeout["count"], timeout["total"]) == ("api", 6, 10)
    assert timeout["previous_count"] == 4
    assert timeout["change_pct"] == 50.0
    assert timeout["new"] is False  # first seen 30 h ago
    assert timeout["first_seen"] == (NOW - timedelta(hours=30)).isoformat()
    assert timeout["hourly"] == [
        {"hour": "2026-06-03T09:00:00+00:00", "count": 3},
        {"hour": "2026-06-03T12:00:00+00:00", "count": 3},
    ]
    card = sigs["card <NUM> declined"]
    assert (card["count"], card["previous_count"], card["change_pct"], card["new"]) == (
        2,
        0,
        None,
        True,
    )
    assert len(card["id"]) == 16


def test_kind_source_and_monitor_narrow_the_report(client_for, member, mined):
    client = client_for(member)
    checks = client.get(f"{URL}?kind=checks").json()
    assert set(checks) == {"since", "until", "groups"}  # exactly the answer before logs
    logs = client.get(f"{URL}?kind=logs&source=worker").json()
    assert "groups" not in logs
    assert [s["template"] for s in logs["signatures"]] == ["job <NUM> lost"]
    # A monitor's logs are those of the source named as its slug.
    worker = make_monitor(mined, "worker")
    assert worker.slug == "worker"
    by_monitor = client.get(f"{URL}?kind=logs&monitor={worker.pk}").json()
    assert [s["source"] for s in by_monitor["signatures"]] == ["worker"]


def test_signatures_are_paged_with_a_cursor(client_for, member, mined):
    client = client_for(member)
    first = client.get(f"{URL}?kind=logs&limit=2").json()
    assert len(first["signatures"]) == 2
    second = client.get(f"{URL}?kind=logs&limit=2&cursor={first['signatures_next']}").json()
    assert [s["template"] for s in second["signatures"]] == ["job <NUM> lost"]
    assert second["signatures_next"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("kind=traces", "kind"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("cursor=%25%25%25", "cursor"),
        ("source=a%20b", "source"),
    ],
)
def test_bad_parameters_are_400s(client_for, member, pro_org, travel, query, field):
    response = client_for(member).get(f"{URL}?{query}")
    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_another_tenant_never_sees_our_signatures(client_for, outsider, other_org, mined):
    from apps.plans.services import organization_change_plan

    organization_change_plan(org=other_org, plan_code="pro", source="test")
    write(other_org, "api", "their own {i} problem", NOW)
    services.error_signatures_mine(now=NOW)
    client = client_for(outsider)
    body = client.get(f"{URL}?kind=logs").json()
    assert [s["template"] for s in body["signatures"]] == ["their own <NUM> problem"]
    assert client.get(f"{URL}?kind=logs&source=worker").json()["signatures"] == []


def test_queries_do_not_grow_with_signatures(
    client_for, member, mined, django_assert_max_num_queries
):
    client = client_for(member)
    client.get(f"{URL}?kind=logs")  # warm the session and plan caches
    for i in range(40):
        write(mined, f"svc{i}", f"failure kind{i} number {{i}}", NOW, n=2)
    services.error_signatures_mine(now=NOW)
    with django_assert_max_num_queries(12):
        body = client.get(f"{URL}?kind=logs&limit=200").json()
    assert len(body["signatures"]) == 43
