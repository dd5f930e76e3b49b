"""Badges: each state, uptime and response from rollups, Shields JSON, and the grey "unknown"
badge for anything that is not a live badge (never a 500)."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

import pytest
from django.test import Client

from apps.monitors.models import Monitor
from apps.statuspages import badges, services
from tests.factories import make_monitor
from tests.statuspages.conftest import hourly

pytestmark = pytest.mark.django_db
SVG = "{http://www.w3.org/2000/svg}"


def _texts(response) -> list[str]:
    root = ET.fromstring(response.content)  # noqa: S314  (our own response)
    return [t.text for t in root.iter(f"{SVG}text") if t.get("aria-hidden") is None]


def _fill(response) -> str:
    root = ET.fromstring(response.content)  # noqa: S314  (our own response)
    return root.find(f"{SVG}g").findall(f"{SVG}rect")[1].get("fill")


@pytest.fixture
def badge(org):
    monitor = make_monitor(org, "api")
    return services.badge_create(org=org, monitor_id=monitor.pk)


@pytest.mark.parametrize(
    ("status", "paused", "message", "color"),
    [
        ("up", False, "up", "brightgreen"),
        ("degraded", False, "degraded", "yellow"),
        ("down", False, "down", "red"),
        ("maintenance", False, "maintenance", "blue"),
        ("unknown", False, "unknown", "lightgrey"),
        ("up", True, "paused", "lightgrey"),
    ],
)
def test_the_status_badge_shows_each_state(badge, status, paused, message, color, settings):
    Monitor.objects.filter(pk=badge.monitor_id).update(status=status, paused=paused)
    r = Client().get(f"/badge/{badge.token}/status.svg")
    assert r.status_code == 200
    assert r["Content-Type"] == "image/svg+xml"
    assert r["Cache-Control"] == f"public, max-age={settings.BADGE_CACHE_SECONDS}"
    assert _texts(r) == ["status", message]
    assert _fill(r) == badges.COLORS[color]
    shields = Client().get(f"/badge/{badge.token}/shields.json").json()
    assert shields == {"schemaVersion": 1, "label": "status", "message": message, "color": color}


def test_uptime_and_response_badges_come_from_rollups(badge):
    monitor = Monitor.objects.get(pk=badge.monitor_id)
    hourly(monitor, 2, up=995, down=5, ms=180)
    hourly(monitor, 30, up=1000, ms=180)
    r = Client().get(f"/badge/{badge.token}/uptime.svg?period=24h")
    assert _texts(r) == ["uptime 24h", "99.50%"]
    assert _fill(r) == badges.COLORS["green"]
    r = Client().get(f"/badge/{badge.token}/uptime.svg?period=7d")
    assert _texts(r) == ["uptime 7d", "99.75%"]
    r = Client().get(f"/badge/{badge.token}/response.svg")
    label, message = _texts(r)
    assert label == "response 24h"
    assert message.endswith(" ms")
    assert abs(float(message[:-3]) - 180) / 180 < 0.03
    j = Client().get(f"/badge/{badge.token}/shields.json?type=uptime&period=7d").json()
    assert (j["label"], j["message"]) == ("uptime 7d", "99.75%")


def test_uptime_without_data_says_so(badge):
    r = Client().get(f"/badge/{badge.token}/uptime.svg")
    assert _texts(r) == ["uptime 30d", "no data"]


def test_a_bad_period_is_a_400_badge_not_an_error_page(badge):
    r = Client().get(f"/badge/{badge.token}/uptime.svg?period=1y")
    assert r.status_code == 400
    assert _texts(r) == ["uptime", "bad period"]


@pytest.mark.parametrize("path", ["status.svg", "uptime.svg?period=30d", "response.svg"])
def test_a_missing_revoked_or_deleted_monitor_gets_a_grey_unknown_badge(badge, path):
    for token in (uuid.uuid4(), "not-a-uuid"):
        r = Client().get(f"/badge/{token}/{path}")
        assert r.status_code == 200
        assert _texts(r)[1] == "unknown"
        assert _fill(r) == badges.COLORS["lightgrey"]
    Monitor.objects.filter(pk=badge.monitor_id).delete()
    r = Client().get(f"/badge/{badge.token}/{path}")
    assert (r.status_code, _texts(r)[1]) == (200, "unknown")
    j = Client().get(f"/badge/{badge.token}/shields.json").json()
    assert (j["message"], j["color"]) == ("unknown", "lightgrey")


def test_revoking_a_badge_turns_its_urls_grey(badge, org):
    Monitor.objects.filter(pk=badge.monitor_id).update(status="up")
    services.badge_delete(badge=badge)
    assert _texts(Client().get(f"/badge/{badge.token}/status.svg"))[1] == "unknown"


def test_the_badge_is_wide_enough_for_its_text():
    narrow, wide = badges.text_width("iiii"), badges.text_width("MMMM")
    assert narrow < wide
    data = badges.BadgeData("uptime 30d", "99.95%", "brightgreen")
    root = ET.fromstring(badges.svg(data))  # noqa: S314  (our own response)
    width = int(root.get("width"))
    assert width >= badges.text_width("uptime 30d") + badges.text_width("99.95%") + 20
