"""The public page, status.json and feed.rss: content, privacy, caching, query budget."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.incidents.models import MaintenanceWindow
from apps.monitors.models import Monitor
from apps.statuspages import services
from tests.factories import make_monitor
from tests.statuspages.conftest import (
    daily,
    hourly,
    make_incident,
    make_page,
    make_section,
    page_renaming,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def page(pro):
    api, web, db = (make_monitor(pro, n) for n in ("api", "web", "db"))
    Monitor.objects.filter(pk=api.pk).update(status="up")
    Monitor.objects.filter(pk=web.pk).update(status="down")
    daily(api, 1, up=1440)
    daily(api, 2, up=1400, down=40)
    daily(web, 1, up=1439, down=1)
    hourly(api, 0, up=60)
    page = make_page(pro, description="Our services")
    make_section(page, "Storage", [db], position=2)
    make_section(page, "Edge", [web, api], position=1)
    return page


def test_the_page_shows_sections_in_order_with_90_bars_each(page, anon):
    r = Client().get("/status/acme/")
    assert r.status_code == 200
    html = r.content.decode()
    assert html.index("Edge") < html.index("Storage")
    assert html.index(">web<") < html.index(">api<")
    assert html.count('class="bars"') == 3
    assert html.count("<rect") == 3 * 90
    assert "Partial outage" in html
    # A day without data says so; a day with 40 failures of 1,440 is under 99 %.
    assert "no data" in html
    assert "97.22% uptime (1440 checks)" in html
    assert "bar-down" in html
    assert "bar-up" in html
    assert "bar-partial" in html


def test_an_unpublished_or_unknown_page_is_a_404(page):
    services.status_page_update(page=page, data={"published": False})
    assert Client().get("/status/acme/").status_code == 404
    assert Client().get("/status/nope/").status_code == 404
    assert Client().get("/status/nope/status.json").status_code == 404


def _served(cache: str) -> float:
    from prometheus_client import REGISTRY

    labels = {"format": "html", "cache": cache}
    return REGISTRY.get_sample_value("statuspage_requests_total", labels) or 0.0


def test_a_public_page_is_cacheable_and_served_from_the_cache(page, settings):
    client = Client()
    hits, misses = _served("hit"), _served("miss")
    first = client.get("/status/acme/")
    assert first["Cache-Control"] == f"public, max-age={settings.STATUS_PAGE_CACHE_SECONDS}"
    assert first["X-Cache"] == "miss"
    with CaptureQueriesContext(connection) as queries:
        second = client.get("/status/acme/")
    assert second["X-Cache"] == "hit"
    assert len(queries) == 1  # the page row; the rendering comes from the cache
    assert second.content == first.content
    assert (_served("hit") - hits, _served("miss") - misses) == (1, 1)


def test_a_posted_update_shows_at_once_despite_the_cache(page, member):
    monitor = Monitor.objects.get(name="web")
    incident = make_incident(monitor, title="Website unreachable")
    client = Client()
    assert "Website unreachable" in client.get("/status/acme/").content.decode()
    services.incident_update_post(
        incident=incident, status="identified", message="A bad deploy.", user=member, notify=False
    )
    html = client.get("/status/acme/").content.decode()
    assert "A bad deploy." in html
    assert "Identified" in html


def test_active_incidents_history_postmortems_and_maintenance_are_shown(page, member):
    web = Monitor.objects.get(name="web")
    make_incident(web, title="Website unreachable")
    old = make_incident(web, title="Slow database", resolved=True)
    services.incident_update_post(
        incident=old, status="resolved", message="Index added.", user=member, notify=False
    )
    services.postmortem_set(incident=old, body="We forgot an index.", user=member)
    now = timezone.now()
    window = MaintenanceWindow.objects.create(
        organization=page.organization,
        name="Database upgrade",
        starts_at=now - timedelta(minutes=5),
        ends_at=now + timedelta(hours=1),
    )
    window.monitors.add(web)
    html = Client().get("/status/acme/").content.decode()
    active_part = html[html.index('id="active-incidents"') : html.index('id="maintenance"')]
    assert "Website unreachable" in active_part
    history = html[html.index('id="history"') :]
    assert "Slow database" in history
    assert "Index added." in history
    assert "We forgot an index." in history
    assert "Database upgrade" in html
    assert "In progress" in html


def test_status_json_has_the_documented_shape(page):
    r = Client().get("/status/acme/status.json")
    assert r.status_code == 200
    assert r["Cache-Control"].startswith("public, max-age=")
    data = r.json()
    assert set(data) == {
        "page",
        "status",
        "sections",
        "active_incidents",
        "recent_incidents",
        "maintenance",
        "generated_at",
    }
    assert data["page"]["url"].endswith("/status/acme/")
    assert data["status"] == {"indicator": "partial", "description": "Partial outage"}
    assert [s["name"] for s in data["sections"]] == ["Edge", "Storage"]
    web, api = data["sections"][0]["monitors"]
    assert (web["name"], web["status"]) == ("web", "down")
    assert len(api["days"]) == 90
    assert api["days"][-1]["uptime"] == 100.0  # today, from the hourly rollup
    assert api["days"][0]["uptime"] is None
    assert api["uptime_90d"] == pytest.approx(100 * (1440 + 1400 + 60) / (1440 + 1440 + 60), 1e-3)


def test_the_rss_feed_parses_and_lists_updates(page, member):
    incident = make_incident(Monitor.objects.get(name="web"), title="Website unreachable")
    services.incident_update_post(
        incident=incident, status="investigating", message="Looking.", user=member, notify=False
    )
    r = Client().get("/status/acme/feed.rss")
    assert r.status_code == 200
    assert r["Content-Type"].startswith("application/rss+xml")
    channel = ET.fromstring(r.content).find("channel")  # noqa: S314  (our own response)
    assert channel.findtext("title") == "Acme status"
    titles = [item.findtext("title") for item in channel.findall("item")]
    assert "Website unreachable: Investigating" in titles
    assert "Website unreachable: started" in titles


@pytest.fixture
def private_page(pro):
    page = make_page(pro, slug="secret", private=True, password="open sesame 1")
    make_section(page, "Core", [make_monitor(pro, "api")])
    return page


def test_a_private_page_refuses_without_the_password(private_page):
    client = Client()
    r = client.get("/status/secret/")
    assert r.status_code == 401
    assert "Core" not in r.content.decode()
    assert r["Cache-Control"] == "private, no-store"
    assert client.get("/status/secret/status.json").status_code == 401
    assert client.get("/status/secret/feed.rss").status_code == 401
    r = client.post("/status/secret/access", {"password": "wrong"})
    assert r.status_code == 403
    assert client.get("/status/secret/").status_code == 401


def test_a_private_page_shows_with_the_password_and_is_never_shared_cached(private_page):
    client = Client()
    r = client.post("/status/secret/access", {"password": "open sesame 1"})
    assert r.status_code == 302
    r = client.get("/status/secret/")
    assert r.status_code == 200
    assert "Core" in r.content.decode()
    assert r["Cache-Control"] == "private, no-store"
    assert client.get("/status/secret/status.json").status_code == 200
    # A new password logs everyone out.
    services.status_page_update(page=private_page, data={"password": "another one 2"})
    assert client.get("/status/secret/").status_code == 401


def test_a_private_page_opens_with_its_token_link(private_page):
    client = Client()
    r = client.get(f"/status/secret/?token={private_page.access_token}")
    assert r.status_code == 302
    assert r["Location"] == "/status/secret/"
    assert client.get("/status/secret/").status_code == 200
    assert Client().get("/status/secret/?token=guess").status_code == 401
    feed = Client().get(f"/status/secret/feed.rss?token={private_page.access_token}")
    assert feed.status_code == 200


def test_password_guessing_is_rate_limited(private_page):
    client = Client()
    codes = [client.post("/status/secret/access", {"password": "x"}).status_code for _ in range(12)]
    assert codes[:10] == [403] * 10
    assert codes[10:] == [429, 429]


def _rendered_queries(settings) -> int:
    settings.STATUS_PAGE_CACHE_SECONDS = 0
    with CaptureQueriesContext(connection) as queries:
        r = Client().get("/status/big/")
    assert r.status_code == 200
    return len(queries), r.content.decode()


def test_the_page_costs_the_same_queries_for_3_or_50_monitors_in_1_or_5_sections(pro, settings):
    monitors = [make_monitor(pro, f"m{i:02d}") for i in range(50)]
    for m in monitors:
        daily(m, 3, up=100, down=1)
        hourly(m, 0, up=10)
    page = make_page(pro, slug="big")
    make_incident(monitors[0])
    section = make_section(page, "one", monitors[:3])
    few, html = _rendered_queries(settings)
    assert html.count('class="bars"') == 3
    services.section_update(
        section=section, data={"monitors": [{"monitor": m.pk} for m in monitors[:10]]}
    )
    for i in range(4):
        make_section(page, f"more {i}", monitors[10 + 10 * i : 20 + 10 * i], position=i + 1)
    many, html = _rendered_queries(settings)
    assert html.count('class="bars"') == 50
    assert many == few
    assert many <= 10


def test_incidents_are_titled_with_the_monitors_public_name(pro, member):
    _, monitor = page_renaming(pro, "billing-db-primary", "Payments")
    make_incident(monitor, title="billing-db-primary is down")
    for path in ("/status/names/", "/status/names/status.json", "/status/names/feed.rss"):
        body = Client().get(path).content.decode()
        assert "Payments is down" in body, path
        assert "billing-db-primary" not in body, path
