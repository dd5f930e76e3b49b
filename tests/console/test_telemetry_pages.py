"""Telemetry in the console: the sources, a source's charts, the logs (filters, pages, live
tail) and the charts on a monitor's page; each organization's only, for every role, in a
bounded number of queries. Runs on both databases (DATABASE_URL=postgres://... for
PostgreSQL's full-text search and percentile, without it SQLite's)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.console import telemetry
from apps.monitors.models import MetricSample, Monitor, ResultRollup
from apps.telemetry import services
from apps.telemetry.models import LogLine
from tests.console import support
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _samples(org, source, name, values, *, every=timedelta(minutes=1), end=None):
    """`values` oldest first, the last one a minute ago (or at `end`)."""
    end = end or timezone.now() - timedelta(minutes=1)
    start = end - every * (len(values) - 1)
    MetricSample.objects.bulk_create(
        MetricSample(organization=org, source=source, name=name, value=v, ts=start + i * every)
        for i, v in enumerate(values)
    )


def _logs(org, *lines):
    services.logs_ingest(org=org, payload={"logs": list(lines)})


def _line(message, source="api", level="info", **extra):
    return {"source": source, "level": level, "message": message, **extra}


def _metric_monitor(org, *, source="billing", metric="queue_depth", threshold=100.0):
    return Monitor.objects.create(
        organization=org,
        name=f"{source}-{metric}",
        slug=f"{source}-{metric}",
        kind="metric",
        config={
            "source": source,
            "metric": metric,
            "operator": ">",
            "threshold": threshold,
            "for_seconds": 0,
        },
        status="up",
        status_changed_at=timezone.now(),
    )


def _page(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def _row_messages(page: str) -> list[str]:
    return re.findall(r'<td class="message">([^<]*)', page)


# --- Sources -------------------------------------------------------------------------------


def test_the_sources_page_lists_each_source_with_its_metrics_and_when_last_seen(org, viewer):
    _samples(org, "billing", "queue_depth", [1, 2, 3])
    _samples(org, "web", "rps", [10], end=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    page = _page(support.login(viewer).get("/admin/telemetry/sources/"))
    assert 'data-source="billing"' in page
    assert "queue_depth" in page
    assert "2026-01-02 03:04:05" in page  # web's last sample
    assert f'href="/admin/telemetry/{org.pk}/sources/billing/"' in page
    assert f'href="/admin/telemetry/{org.pk}/logs/?source=billing"' in page


def test_sources_of_another_organization_are_never_listed(org, other_org, member):
    _samples(org, "ours", "m", [1])
    _samples(other_org, "theirs", "m", [1])
    client = support.login(member)
    page = _page(client.get("/admin/telemetry/sources/"))
    assert "ours" in page
    assert "theirs" not in page
    assert client.get(f"/admin/telemetry/sources/?organization={other_org.pk}").status_code == 404
    assert client.get("/admin/telemetry/sources/?organization=not-a-uuid").status_code == 404


def test_an_operator_picks_an_organization_then_sees_its_sources(org, other_org, operator):
    _samples(other_org, "theirs", "m", [1])
    client = support.login(operator)
    page = _page(client.get("/admin/telemetry/sources/"))
    assert f'href="?organization={other_org.pk}"' in page
    page = _page(client.get(f"/admin/telemetry/sources/?organization={other_org.pk}"))
    assert 'data-source="theirs"' in page


def test_a_member_of_two_organizations_sees_both_or_the_one_chosen(org, other_org, member):
    MembershipFactory(organization=other_org, user=member)
    _samples(org, "ours", "m", [1])
    _samples(other_org, "theirs", "m", [1])
    client = support.login(member)
    page = _page(client.get("/admin/telemetry/sources/"))
    assert "ours" in page
    assert "theirs" in page
    client.post("/admin/switch-organization/", {"organization": str(org.pk)})
    page = _page(client.get("/admin/telemetry/sources/"))
    assert "ours" in page
    assert "theirs" not in page
    # the chosen organization scopes the pages reached by URL too, as every console page
    assert client.get(f"/admin/telemetry/{other_org.pk}/logs/").status_code == 404


def test_telemetry_pages_are_closed_to_the_signed_out_and_to_members_of_nothing(
    org, django_user_model
):
    _samples(org, "billing", "queue_depth", [1])
    urls = [
        "/admin/telemetry/sources/",
        f"/admin/telemetry/{org.pk}/sources/billing/",
        f"/admin/telemetry/{org.pk}/logs/",
        f"/admin/telemetry/{org.pk}/logs/tail/",
    ]
    from django.test import Client

    for url in urls:
        response = Client().get(url)
        assert response.status_code == 302, url
        assert "/login/" in response["Location"], url
    nobody = support.login(django_user_model.objects.create_user("n@example.test", "n@x", "pw"))
    for url in urls:
        assert nobody.get(url).status_code in (302, 403), url


@pytest.mark.parametrize("role", ["owner", "admin", "member", "viewer"])
def test_every_role_reads_every_telemetry_page(org, role):
    user = MembershipFactory(organization=org, role=role).user
    monitor = _metric_monitor(org)
    _samples(org, "billing", "queue_depth", [1.0])
    _logs(org, _line("hello"))
    client = support.login(user)
    for url in (
        "/admin/telemetry/sources/",
        f"/admin/telemetry/{org.pk}/sources/billing/",
        f"/admin/telemetry/{org.pk}/logs/",
        f"/admin/monitors/monitor/{monitor.pk}/change/",
    ):
        assert client.get(url).status_code == 200, (role, url)
    page = _page(client.get("/admin/"))
    assert 'id="telemetry-link"' in page


def test_the_sources_page_reads_in_a_fixed_number_of_queries(org, other_org, member):
    MembershipFactory(organization=other_org, user=member)
    client = support.login(member)
    _samples(org, "a", "m", [1.0])
    client.get("/admin/telemetry/sources/")
    with CaptureQueriesContext(connection) as few:
        _page(client.get("/admin/telemetry/sources/"))
    for source in ("b", "c", "d", "e"):
        for name in ("m", "n"):
            _samples(org, source, name, [1.0, 2.0])
            _samples(other_org, source, name, [1.0])
    with CaptureQueriesContext(connection) as many:
        _page(client.get("/admin/telemetry/sources/"))
    # one read per organization in view, whatever their sources and metrics
    assert len(many) == len(few) <= 9, "\n".join(q["sql"][:90] for q in many)


# --- A source ------------------------------------------------------------------------------


def test_a_source_page_draws_one_chart_per_metric_over_the_chosen_range(org, viewer):
    _samples(org, "billing", "queue_depth", [float(i) for i in range(120)])
    _samples(org, "billing", "latency_ms", [5.0, 7.0])
    _samples(org, "other", "x", [1.0])
    client = support.login(viewer)
    page = _page(client.get(f"/admin/telemetry/{org.pk}/sources/billing/?range=1h"))
    assert page.count('<figure class="series"') == 2
    assert 'data-metric="latency_ms"' in page
    assert 'data-metric="queue_depth"' in page
    assert 'data-metric="x"' not in page
    assert '<a href="?range=1h" aria-current="page"' in page
    # one hour in one-minute steps: the last 60 of the 120 minutes (and the newest at most)
    depth = page.split('data-metric="queue_depth"')[1]
    assert re.search(r"Values \((59|60|61) points\)", depth)
    assert 'role="img" aria-label="billing queue_depth:' in page
    page = _page(client.get(f"/admin/telemetry/{org.pk}/sources/billing/?range=24h"))
    depth = page.split('data-metric="queue_depth"')[1]
    # ten-minute steps: 120 minutes are 12 or 13 points, each with min, max, avg and p95
    assert re.search(r"Values \(1[23] points\)", depth)
    assert f'href="/admin/telemetry/{org.pk}/logs/?source=billing"' in page


def test_a_source_chart_shows_the_downsampled_values(org, viewer):
    end = timezone.now().replace(second=30, microsecond=0) - timedelta(hours=2)
    # one hour-long step (7-day range) holding 1..20: average 10.5, min 1, max 20, p95 19
    hour = end.replace(minute=0, second=0)
    _samples(org, "svc", "v", [float(i) for i in range(1, 21)], end=hour + timedelta(minutes=19))
    page = _page(support.login(viewer).get(f"/admin/telemetry/{org.pk}/sources/svc/?range=7d"))
    row = re.search(r"<tr><th scope=\"row\">[^<]+</th>(.*?)</tr>", page.split("<tbody>")[1])
    cells = re.findall(r'<td class="num">([^<]*)</td>', row.group(1))
    assert cells == ["20", "10.5", "1", "20", "19"]


def test_another_organizations_source_is_404_by_url(org, other_org, owner):
    _samples(other_org, "theirs", "m", [1])
    client = support.login(owner)
    assert client.get(f"/admin/telemetry/{other_org.pk}/sources/theirs/").status_code == 404
    # the same name in our organization, which never sent it: not found either
    assert client.get(f"/admin/telemetry/{org.pk}/sources/theirs/").status_code == 404


def test_a_source_page_reads_in_a_fixed_number_of_queries(org, viewer):
    for name in ("a", "b", "c"):
        _samples(org, "svc", name, [1.0, 2.0])
    client = support.login(viewer)
    url = f"/admin/telemetry/{org.pk}/sources/svc/?range=30d"
    client.get(url)
    with CaptureQueriesContext(connection) as three:
        _page(client.get(url))
    for name in ("d", "e", "f"):
        _samples(org, "svc", name, [1.0, 2.0])
    with CaptureQueriesContext(connection) as six:
        _page(client.get(url))
    # the page's own: session, user, memberships, organization, the source's names, one per
    # chart; the admin's around it: the user's permissions (2) and the switcher's names
    assert len(six) == len(three) + 3
    assert len(three) <= 8 + 3, "\n".join(q["sql"][:90] for q in three)


def test_thirty_days_of_minute_samples_are_one_query_per_chart(org, viewer):
    _samples(org, "svc", "busy", [float(i % 50) for i in range(30 * 24 * 60)])
    client = support.login(viewer)
    with CaptureQueriesContext(connection) as queries:
        page = _page(client.get(f"/admin/telemetry/{org.pk}/sources/svc/?range=30d"))
    assert len(queries) <= 9, [q["sql"] for q in queries]
    assert re.search(r"Values \(18[01] points\)", page)  # four-hour steps


# --- Logs ----------------------------------------------------------------------------------


def test_the_logs_page_lists_lines_newest_first_with_attributes_to_expand(org, viewer):
    now = timezone.now()
    _logs(
        org,
        _line("first", ts=(now - timedelta(minutes=2)).isoformat()),
        _line(
            "second <b>",
            level="error",
            ts=(now - timedelta(minutes=1)).isoformat(),
            attributes={"pid": 7, "path": "/pay"},
        ),
    )
    page = _page(support.login(viewer).get(f"/admin/telemetry/{org.pk}/logs/"))
    assert _row_messages(page) == ["second &lt;b&gt;", "first"]
    assert "<details><summary>attributes</summary>" in page
    assert "<dt>path</dt><dd>/pay</dd>" in page
    assert '<th scope="col">level</th>' in page
    assert re.search(r'id="log-live"[^>]* hidden>', page)  # shown by the script only


def test_the_logs_filters_narrow_by_source_level_words_and_time(org, viewer):
    now = timezone.now().replace(microsecond=0)
    old = (now - timedelta(days=2)).isoformat()
    _logs(
        org,
        _line("payment failed for order 7", source="billing", level="error"),
        _line("payment accepted", source="billing", level="info"),
        _line("payment failed upstream", source="web", level="error"),
        _line("payment failed long ago", source="billing", level="error", ts=old),
    )
    client = support.login(viewer)
    url = f"/admin/telemetry/{org.pk}/logs/"
    page = _page(client.get(url, {"source": "billing", "level": "error", "q": "failed payment"}))
    assert _row_messages(page) == ["payment failed for order 7", "payment failed long ago"]
    since = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    page = _page(client.get(url, {"level": ["error", "info"], "since": since}))
    assert sorted(_row_messages(page)) == [
        "payment accepted",
        "payment failed for order 7",
        "payment failed upstream",
    ]
    assert 'value="error" id="id_level_4" checked' in page or "checked" in page
    until = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    page = _page(client.get(url, {"until": until}))
    assert _row_messages(page) == ["payment failed long ago"]


def test_bad_filters_are_shown_on_the_form_with_a_400(org, viewer):
    client = support.login(viewer)
    url = f"/admin/telemetry/{org.pk}/logs/"
    response = client.get(url, {"level": "loud", "since": "yesterday", "q": "x" * 201})
    assert response.status_code == 400
    page = response.content.decode()
    assert page.count('class="errornote"') >= 3
    assert client.get(url, {"older": "nonsense"}).status_code == 400


def test_older_and_newer_links_page_through_the_lines(org, viewer, monkeypatch):
    monkeypatch.setattr(telemetry, "PAGE_SIZE", 3)
    now = timezone.now()
    _logs(
        org,
        *[_line(f"line {i}", ts=(now - timedelta(seconds=10 - i)).isoformat()) for i in range(8)],
    )
    client = support.login(viewer)
    url = f"/admin/telemetry/{org.pk}/logs/"
    first = _page(client.get(url, {"source": "api"}))
    assert _row_messages(first) == ["line 7", "line 6", "line 5"]
    assert 'id="log-newer"' not in first
    older = re.search(r'id="log-older" href="([^"]+)"|href="([^"]+)" id="log-older"', first)
    second = _page(client.get(url + older.group(2).replace("&amp;", "&")))
    assert _row_messages(second) == ["line 4", "line 3", "line 2"]
    assert "source=api" in older.group(2)  # the filters travel with the cursor
    older = re.search(r'href="([^"]+)" id="log-older"', second).group(1)
    third = _page(client.get(url + older.replace("&amp;", "&")))
    assert _row_messages(third) == ["line 1", "line 0"]
    assert 'id="log-older"' not in third
    newer = re.search(r'href="([^"]+)" id="log-newer"', third).group(1)
    back = _page(client.get(url + newer.replace("&amp;", "&")))
    assert _row_messages(back) == ["line 4", "line 3", "line 2"]
    assert 'id="log-live"' not in back  # live only on the newest page


def test_lines_with_the_same_time_are_not_lost_between_pages(org, viewer, monkeypatch):
    monkeypatch.setattr(telemetry, "PAGE_SIZE", 2)
    at = timezone.now().isoformat()
    _logs(org, *[_line(f"same {i}", ts=at) for i in range(5)])
    client = support.login(viewer)
    url = f"/admin/telemetry/{org.pk}/logs/"
    seen, query = [], ""
    while True:
        page = _page(client.get(url + query))
        seen += _row_messages(page)
        link = re.search(r'href="([^"]+)" id="log-older"', page)
        if not link:
            break
        query = link.group(1).replace("&amp;", "&")
    assert sorted(seen) == [f"same {i}" for i in range(5)]


def test_another_organizations_logs_are_404_and_never_mixed_in(org, other_org, owner):
    _logs(org, _line("ours"))
    _logs(other_org, _line("theirs"))
    client = support.login(owner)
    page = _page(client.get(f"/admin/telemetry/{org.pk}/logs/"))
    assert _row_messages(page) == ["ours"]
    assert client.get(f"/admin/telemetry/{other_org.pk}/logs/").status_code == 404
    assert client.get(f"/admin/telemetry/{other_org.pk}/logs/tail/").status_code == 404


def test_the_logs_page_reads_in_a_fixed_number_of_queries(org, viewer):
    client = support.login(viewer)
    url = f"/admin/telemetry/{org.pk}/logs/"
    _logs(org, *[_line(f"x {i}", attributes={"i": i}) for i in range(3)])
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        _page(client.get(url, {"q": "x"}))
    _logs(org, *[_line(f"x {i}", attributes={"i": i}) for i in range(90)])
    with CaptureQueriesContext(connection) as many:
        _page(client.get(url, {"q": "x"}))
    # session, user, memberships, organization, the known sources, one page of lines; the
    # admin's permissions (2) and the switcher's names
    assert len(many) == len(few) <= 9, "\n".join(q["sql"][:90] for q in many)


def test_the_live_tail_sends_new_lines_as_rendered_rows(org, other_org, viewer, settings):
    settings.TELEMETRY_TAIL_SECONDS = 1
    settings.TELEMETRY_TAIL_POLL_SECONDS = 1
    _logs(org, _line("before"))
    first = LogLine.objects.get(message="before").pk
    _logs(org, _line("after <script>", level="error"), _line("other source", source="web"))
    _logs(other_org, _line("theirs"))
    client = support.login(viewer)
    response = client.get(f"/admin/telemetry/{org.pk}/logs/tail/?source=api&after={first}")
    assert response["Content-Type"] == "text/event-stream"
    body = b"".join(response.streaming_content).decode()
    events = [e for e in body.split("\n\n") if e.startswith("id:") and "event: log" in e]
    assert len(events) == 1
    assert "after &lt;script&gt;" in events[0]
    assert "<script>" not in events[0]
    assert 'class="log-line level-error"' in events[0]
    assert "event: end" in body
    assert client.get(f"/admin/telemetry/{org.pk}/logs/tail/?after=x").status_code == 400


# --- A monitor's page ----------------------------------------------------------------------


def test_a_metric_monitors_page_charts_its_metric_with_the_threshold(org, viewer):
    monitor = _metric_monitor(org, threshold=100.0)
    _samples(org, "billing", "queue_depth", [50.0, 150.0, 80.0])
    client = support.login(viewer)
    page = _page(client.get(f"/admin/monitors/monitor/{monitor.pk}/change/?range=1h"))
    assert 'id="metrics-title"' in page
    assert 'data-metric="queue_depth"' in page
    assert 'class="threshold"' in page
    assert f'href="/admin/telemetry/{org.pk}/sources/billing/"' in page
    assert '<a href="?range=1h#metrics" aria-current="page"' in page


def test_a_checking_monitors_page_charts_its_response_time(org, viewer):
    (monitor,) = support.monitors(org, 1)
    support.rollups(monitor, hours=24, days=0)
    page = _page(support.login(viewer).get(f"/admin/monitors/monitor/{monitor.pk}/change/"))
    assert 'data-metric="response time (ms, hourly)"' in page
    assert re.search(r"Values \(2[34] points\)", page)


def test_the_monitor_page_shows_nothing_of_another_organization(org, other_org, owner):
    theirs = _metric_monitor(other_org)
    _samples(other_org, "billing", "queue_depth", [1.0])
    client = support.login(owner)
    assert client.get(f"/admin/monitors/monitor/{theirs.pk}/change/").status_code == 404
    # our own metric monitor on the same source name charts only our (empty) samples
    ours = _metric_monitor(org)
    page = _page(client.get(f"/admin/monitors/monitor/{ours.pk}/change/?range=30d"))
    assert "No samples in this range." in page


def test_the_monitor_pages_charts_cost_a_fixed_number_of_queries(org, viewer):
    monitor = _metric_monitor(org)
    client = support.login(viewer)
    url = f"/admin/monitors/monitor/{monitor.pk}/change/?range=30d"
    client.get(url)
    with CaptureQueriesContext(connection) as empty:
        _page(client.get(url))
    _samples(org, "billing", "queue_depth", [float(i) for i in range(30 * 24 * 60)])
    with CaptureQueriesContext(connection) as full:
        _page(client.get(url))
    assert len(full) == len(empty)
    assert not any("ResultRollup" in q["sql"] for q in full)
    assert ResultRollup.objects.count() == 0
