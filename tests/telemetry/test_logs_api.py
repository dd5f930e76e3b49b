"""Our own log API: the JSON batch in, the filtered list and full-text search out, the live
tail. Runs on both databases (DATABASE_URL=postgres://... for PostgreSQL's tsvector, without
it SQLite's FTS5)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.plans.models import Limit
from apps.plans.services import limit_override_set
from apps.telemetry.models import LogLine

pytestmark = pytest.mark.django_db
URL = "/api/v1/logs"


def _line(message, source="api", level="info", **extra):
    return {"source": source, "level": level, "message": message, **extra}


def _ingest(client, *lines):
    response = client.post(URL, {"logs": list(lines)}, format="json")
    assert response.status_code == 202, response.content
    return response


def test_a_batch_is_accepted_and_counted(key_client, org):
    client = key_client(org)
    at = "2026-01-02T03:04:05Z"
    response = _ingest(
        client,
        _line("started", ts=at, attributes={"pid": 7}),
        _line("disk full", level="error"),
    )
    assert response.json() == {"accepted": 2}
    started = LogLine.objects.get(message="started")
    assert started.ts.isoformat() == "2026-01-02T03:04:05+00:00"
    assert started.attributes == {"pid": 7}
    usage = client.get("/api/v1/usage").json()["usage"]["log_lines"]
    assert usage["used"] == 2
    assert usage["limit"] == 100_000  # the free plan's


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"source": "a b", "message": "x"}, "logs[1].source"),
        ({"source": "a", "message": ""}, "logs[1].message"),
        ({"source": "a", "message": 5}, "logs[1].message"),
        ({"source": "a", "message": "x", "level": "loud"}, "logs[1].level"),
        ({"source": "a", "message": "x", "ts": "yesterday"}, "logs[1].ts"),
        ({"source": "a", "message": "x", "ts": None}, "logs[1].ts"),
        ({"source": "a", "message": "x", "ts": "2099-01-01T00:00:00Z"}, "logs[1].ts"),
        ({"source": "a", "message": "x", "attributes": [1]}, "logs[1].attributes"),
        ({"source": "a", "message": "x", "attributes": None}, "logs[1].attributes"),
        ({"source": "a", "message": "x", "attributes": {"k": "v" * 9000}}, "logs[1].attributes"),
        ({"source": "a", "message": "x", "host": "h"}, "logs[1].host"),
        ({"source": "a", "message": "x" * 40_000}, "logs[1].message"),
        ("text", "logs[1]"),
    ],
)
def test_a_bad_item_refuses_the_whole_batch_naming_it(key_client, org, item, field):
    response = key_client(org).post(URL, {"logs": [_line("fine"), item]}, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not LogLine.objects.exists()


def test_batch_bounds(key_client, org):
    client = key_client(org)
    assert client.post(URL, {"logs": []}, format="json").status_code == 400
    assert client.post(URL, {"lines": []}, format="json").status_code == 400
    too_many = {"logs": [_line("x")] * 1001}
    assert client.post(URL, too_many, format="json").status_code == 400
    _ingest(client, *[_line("x")] * 1000)
    big = {"logs": [_line("y" * 30_000)] * 40}  # 1.2 MB
    response = client.post(URL, big, format="json")
    assert response.status_code == 413
    assert response.json()["error"] == "Payload too large"
    assert LogLine.objects.count() == 1000


def test_over_the_monthly_limit_it_is_402_and_nothing_is_stored(key_client, org):
    limit_override_set(org=org, limit=Limit.LOG_LINES_PER_MONTH, value=3, reason="test")
    client = key_client(org)
    _ingest(client, _line("a"), _line("b"))
    response = client.post(URL, {"logs": [_line("c"), _line("d")]}, format="json")
    assert response.status_code == 402
    assert response.json()["feature"] == "log_lines_per_month"
    assert LogLine.objects.count() == 2


def _messages(response):
    assert response.status_code == 200, response.content
    return [row["message"] for row in response.json()["results"]]


@pytest.fixture
def logs(key_client, org):
    client = key_client(org)
    now = timezone.now()
    lines = [
        _line("connection timeout to db-1", source="api", level="error"),
        _line("Connection refused by upstream", source="api", level="warn"),
        _line("request served in 12 ms", source="api"),
        _line("payment timeout, retrying", source="billing", level="error"),
        _line("cache warmed", source="billing", level="debug"),
    ]
    for i, line in enumerate(lines):
        line["ts"] = (now - timedelta(minutes=len(lines) - i)).isoformat()
    _ingest(client, *lines)
    return client


def test_the_list_is_newest_first_and_filters(logs):
    assert _messages(logs.get(URL)) == [
        "cache warmed",
        "payment timeout, retrying",
        "request served in 12 ms",
        "Connection refused by upstream",
        "connection timeout to db-1",
    ]
    assert _messages(logs.get(URL, {"source": "billing"})) == [
        "cache warmed",
        "payment timeout, retrying",
    ]
    assert _messages(logs.get(URL, {"level": "error,warn", "source": "api"})) == [
        "Connection refused by upstream",
        "connection timeout to db-1",
    ]
    since = (timezone.now() - timedelta(minutes=2, seconds=30)).isoformat()
    assert _messages(logs.get(URL, {"since": since})) == [
        "cache warmed",
        "payment timeout, retrying",
    ]


def test_full_text_search_matches_every_word_case_insensitively(logs):
    assert _messages(logs.get(URL, {"q": "timeout"})) == [
        "payment timeout, retrying",
        "connection timeout to db-1",
    ]
    assert _messages(logs.get(URL, {"q": "CONNECTION"})) == [
        "Connection refused by upstream",
        "connection timeout to db-1",
    ]
    assert _messages(logs.get(URL, {"q": "connection timeout"})) == ["connection timeout to db-1"]
    assert _messages(logs.get(URL, {"q": "timeout", "source": "billing"})) == [
        "payment timeout, retrying"
    ]
    assert _messages(logs.get(URL, {"q": "nothing-like-this"})) == []


@pytest.mark.parametrize("q", ['"unbalanced', "a OR b", "NEAR(x y)", "col:value", "*", "-x"])
def test_search_syntax_in_the_query_is_plain_words(logs, q):
    # FTS5 and tsquery operators in user input must not be a 500 (nor change the meaning)
    assert logs.get(URL, {"q": q}).status_code == 200


def test_the_list_is_cursor_paginated(key_client, org):
    client = key_client(org)
    _ingest(client, *[_line(f"line {i}") for i in range(25)])
    seen, url, params = [], URL, {"page_size": 10}
    while url:
        page = client.get(url, params).json()
        seen += [row["id"] for row in page["results"]]
        url, params = page["next"], None
    assert len(seen) == len(set(seen)) == 25
    assert seen == sorted(seen, reverse=True)


@pytest.mark.parametrize(
    "params",
    [{"level": "loud"}, {"since": "yesterday"}, {"q": "   "}, {"q": "x" * 201}],
)
def test_bad_filters_are_400(logs, params):
    response = logs.get(URL, params)
    assert response.status_code == 400
    assert response.json()["fields"]


def test_the_list_costs_the_same_queries_for_one_line_or_a_page(key_client, org):
    client = key_client(org)
    _ingest(client, _line("one"))
    client.get(URL)  # warm: entitlements cached

    def count(params):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(URL, params).status_code == 200
        return len(queries)

    one = count({"q": "one"})
    _ingest(client, *[_line(f"one {i}") for i in range(99)])
    assert count({"q": "one"}) == one
    assert count({"page_size": 100}) == one


def test_another_organizations_lines_are_never_listed_or_found(key_client, org, other_org):
    mine, theirs = key_client(org), key_client(other_org)
    _ingest(mine, _line("acme secret timeout", source="shared"))
    _ingest(theirs, _line("globex secret timeout", source="shared"))
    for params in ({}, {"source": "shared"}, {"q": "secret"}, {"level": "info"}):
        assert _messages(mine.get(URL, params)) == ["acme secret timeout"]
        assert _messages(theirs.get(URL, params)) == ["globex secret timeout"]


def test_members_read_and_viewers_cannot_write(client_for, org, viewer, member, key_client):
    _ingest(key_client(org), _line("hello"))
    assert _messages(client_for(viewer).get(URL)) == ["hello"]
    assert client_for(viewer).post(URL, {"logs": [_line("x")]}, format="json").status_code == 403
    assert client_for(member).post(URL, {"logs": [_line("x")]}, format="json").status_code == 202


def _events(response):
    text = b"".join(response.streaming_content).decode()
    events = []
    for block in text.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != ":"
        )
        if "event" in fields:
            events.append(fields)
    return events


def test_the_tail_streams_lines_after_an_id_then_ends(key_client, org, other_org, settings):
    settings.TELEMETRY_TAIL_POLL_SECONDS = 1
    client = key_client(org)
    _ingest(client, _line("before"))
    first = LogLine.objects.get().id
    _ingest(client, _line("after one", level="error"), _line("after two"))
    _ingest(key_client(other_org), _line("not yours"))
    response = client.get(f"{URL}/tail", {"after": first, "seconds": 1})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    events = _events(response)
    assert [e["event"] for e in events] == ["log", "log", "end"]
    assert '"after one"' in events[0]["data"]
    assert int(events[1]["id"]) > int(events[0]["id"]) > first
    assert events[2]["id"] == events[1]["id"]  # a reconnect resumes after the last line


def test_the_tail_filters_and_resumes_from_last_event_id(key_client, org):
    client = key_client(org)
    _ingest(client, _line("a", level="error"), _line("b"), _line("c", level="error"))
    ids = list(LogLine.objects.order_by("id").values_list("id", flat=True))
    response = client.get(
        f"{URL}/tail", {"level": "error", "seconds": 1}, HTTP_LAST_EVENT_ID=str(ids[0])
    )
    logged = [e for e in _events(response) if e["event"] == "log"]
    assert [int(e["id"]) for e in logged] == [ids[2]]  # after ids[0], errors only
    assert '"message":"c"' in logged[0]["data"]


def test_the_tail_refuses_bad_parameters(key_client, org):
    client = key_client(org)
    assert client.get(f"{URL}/tail", {"after": "x"}).status_code == 400
    assert client.get(f"{URL}/tail", {"level": "loud"}).status_code == 400
