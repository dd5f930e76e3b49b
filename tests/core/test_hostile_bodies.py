"""Hostile request bodies get a 400 or 413 in the one JSON error shape, and nothing is stored.

Each body below once answered a 500 (RecursionError, a NUL or surrogate the database or the
encoder refused, a number no column holds) or an HTML page; the bounded parser refuses them
before any view runs.
"""

from __future__ import annotations

import pytest

from apps.monitors.models import MetricSample, Monitor

MONITORS = "/api/v1/monitors/"
GOOD = '{"name": "shop", "kind": "http", "config": {"url": "http://127.0.0.1:9/"}}'


def _monitor_with(config_json: str) -> str:
    return '{"name": "shop", "kind": "http", "config": ' + config_json + "}"


HOSTILE = {
    "nested a thousand levels": _monitor_with("[" * 1000 + "]" * 1000),
    "nested past the limit": _monitor_with('{"a":' * 70 + "1" + "}" * 70),
    "NUL in a key": _monitor_with('{"url": "http://127.0.0.1:9/", "headers": {"X-A\\u0000": "1"}}'),
    "NUL in a value": '{"name": "sh\\u0000op", "kind": "http", "config": {}}',
    "unpaired surrogate in a key": _monitor_with('{"\\ud800": 1}'),
    "unpaired surrogate in a value": '{"name": "\\udfff", "kind": "http", "config": {}}',
    "a 300-digit integer": '{"name": "shop", "kind": "http", "interval_seconds": 1'
    + "0" * 300
    + "}",
    "NaN": '{"name": "shop", "kind": "http", "interval_seconds": NaN}',
    "Infinity": '{"name": "shop", "kind": "http", "interval_seconds": -Infinity}',
    "a float too large to be one": '{"name": "shop", "kind": "http", "interval_seconds": 1e400}',
}


def _assert_error_shape(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"]
    assert body["detail"]
    assert body["code"]
    return body


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_body_is_a_400_and_stores_nothing(client_for, member, body):
    response = client_for(member).generic(
        "POST", MONITORS, body.encode("utf-8", "surrogatepass"), content_type="application/json"
    )
    body = _assert_error_shape(response, 400)
    assert body["error"] == "Malformed request"
    assert not Monitor.objects.exists()


def test_a_body_that_is_not_utf8_is_a_400(client_for, member):
    response = client_for(member).generic(
        "POST", MONITORS, b'{"name": "\xff\xfe"}', content_type="application/json"
    )
    assert "UTF-8" in _assert_error_shape(response, 400)["detail"]


def test_a_body_over_the_limit_is_a_413_in_json(client_for, member, settings):
    padding = " " * settings.API_MAX_BODY_BYTES  # 2.5 MiB by default
    response = client_for(member).generic(
        "POST", MONITORS, (GOOD[:-1] + padding + "}").encode(), content_type="application/json"
    )
    body = _assert_error_shape(response, 413)
    assert body["code"] == "payload_too_large"
    assert not Monitor.objects.exists()


def test_the_limits_leave_ordinary_bodies_alone(client_for, member):
    response = client_for(member).generic(
        "POST", MONITORS, GOOD.encode(), content_type="application/json"
    )
    assert response.status_code == 201, response.json()
    assert Monitor.objects.count() == 1


def test_a_metric_value_no_column_holds_is_a_400(key_client, org):
    body = '{"source": "api", "metrics": {"cpu": 1' + "0" * 300 + "}}"
    response = key_client(org).generic(
        "POST", "/api/v1/metrics", body.encode(), content_type="application/json"
    )
    _assert_error_shape(response, 400)
    assert not MetricSample.objects.exists()


ELSEWHERE = {
    "NUL in a metric name": ("/api/v1/metrics", '{"source": "a", "metrics": {"cp\\u0000u": 1}}'),
    "surrogate in a metric name": ("/api/v1/metrics", '{"source": "a", "metrics": {"\\udc80": 1}}'),
    "NUL in an unknown key": ("/api/v1/incidents/", '{"name": "x", "\\u0000": 1}'),
    "surrogate in an unknown key": ("/api/v1/incidents/", '{"name": "x", "\\ud800x": 1}'),
    "NUL in a nested unknown key": (
        "/api/v1/escalation-policies/",
        '{"name": "p", "severities": ["critical"], "steps": [{"\\u0000": 1}]}',
    ),
}


@pytest.mark.parametrize(("path", "body"), ELSEWHERE.values(), ids=ELSEWHERE.keys())
def test_nul_or_surrogates_in_names_are_a_400_wherever_they_are(key_client, org, path, body):
    # The 400 that names an unknown key or a metric must be renderable: the parser refuses
    # such names before any serializer would quote them.
    response = key_client(org).generic(
        "POST", path, body.encode("utf-8", "surrogatepass"), content_type="application/json"
    )
    assert _assert_error_shape(response, 400)["error"] == "Malformed request"
    assert not MetricSample.objects.exists()


@pytest.mark.parametrize(
    "headers",
    [
        {"X-A": "1\r\nX-Injected: 1"},
        {"X-A": "1\nGET / HTTP/1.1"},
        {"X-A\r\nX-Injected": "1"},
        {"X A": "1"},
        {"X-A:": "1"},
    ],
    ids=["CRLF in a value", "LF in a value", "CRLF in a name", "space in a name", "colon"],
)
def test_a_monitor_header_that_would_smuggle_another_is_refused_at_save(
    client_for, member, headers
):
    response = client_for(member).post(
        MONITORS,
        {
            "name": "shop",
            "kind": "http",
            "config": {"url": "http://127.0.0.1:9/", "headers": headers},
        },
        format="json",
    )
    assert response.status_code == 400
    assert "headers" in response.json()["fields"]["config"]
    assert not Monitor.objects.exists()
