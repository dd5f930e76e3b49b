"""Query strings no filter can use, and errors Django itself answers, under /api/: each is a
4xx in the one JSON error shape, never a 500 or an HTML page.

A NUL in a filter's value reached the database before (PostgreSQL refuses it in a text
literal: a 500 on `?search=`, `?tag=` and every other text filter); the check stands once in
the middleware, for every query string under /api/.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from apps.core.middleware import ApiErrorMiddleware

LISTS = [
    "/api/v1/monitors/",
    "/api/v1/incidents/",
    "/api/v1/alert-rules/",
    "/api/v1/maintenance-windows/",
    "/api/v1/monitor-dependencies/",
    "/api/v1/channels/",
    "/api/v1/escalation-policies/",
    "/api/v1/notifications/",
    "/api/v1/healing-policies/",
    "/api/v1/healing-attempts/",
    "/api/v1/audit-log/",
    "/api/v1/members/",
    "/api/v1/api-keys/",
    "/api/v1/status-pages/",
    "/api/v1/status-page-sections/",
    "/api/v1/badges/",
    "/api/v1/reports/sla",
    "/api/v1/reports/summary",
]

QUERIES = {
    "NUL in ?search=": "search=" + quote("shop\x00"),
    "NUL in ?tag=": "tag=" + quote("\x00"),
    "NUL in ?status=": "status=open" + quote("\x00"),
    "NUL in ?monitor=": "monitor=" + quote("\x00"),
    "NUL in ?cursor=": "cursor=" + quote("\x00"),
    "NUL in ?page_size=": "page_size=1" + quote("\x00"),
    "NUL in an unknown name": quote("x\x00y") + "=1",
    "NUL after a good parameter": "search=shop&kind=" + quote("http\x00"),
}


def _assert_error_shape(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert body["error"], body
    assert body["detail"], body
    assert body["code"], body
    return body


@pytest.mark.parametrize("path", LISTS)
def test_a_nul_in_a_query_string_is_a_400_on_every_list(key_client, org, path):
    client = key_client(org)
    for case, query in QUERIES.items():
        body = _assert_error_shape(client.get(f"{path}?{query}"), 400)
        assert body["error"] == "Malformed request", case
        assert "NUL" in body["detail"], case


@pytest.mark.parametrize("path", ["/api/v1/monitors/", "/api/v1/incidents/"])
@pytest.mark.parametrize(
    "raw",
    ["%ED%A0%80", "%ff%fe", "%C0%80", "\u00e9t\u00e9"],
    ids=["encoded surrogate", "not UTF-8", "overlong NUL", "plain accents"],
)
def test_undecodable_query_text_is_never_a_500(key_client, org, path, raw):
    # Django decodes a query string with replacement characters: no surrogate reaches a view.
    response = key_client(org).get(f"{path}?search={raw}")
    assert response.status_code in (200, 400), response.content[:300]
    assert response["Content-Type"].startswith("application/json")


def test_too_many_query_parameters_is_a_400_in_the_shape(key_client, org, settings):
    query = "&".join(f"p{i}=1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    body = _assert_error_shape(key_client(org).get(f"/api/v1/monitors/?{query}"), 400)
    assert "query parameters" in body["detail"]


def test_an_ordinary_query_string_passes(key_client, org):
    response = key_client(org).get("/api/v1/monitors/?search=shop&kind=http")
    assert response.status_code == 200
    assert response.json()["results"] == []


ERRORS = [
    # (method, path, status, code)
    ("get", "/api/v1/no-such-thing/", 404, "not_found"),
    ("get", "/api/no-version/", 404, "not_found"),
    ("put", "/api/v1/monitors/", 405, "method_not_allowed"),
    ("delete", "/api/v1/usage", 405, "method_not_allowed"),
]


@pytest.mark.parametrize(("method", "path", "status", "code"), ERRORS)
def test_every_api_error_is_json_in_the_one_shape(key_client, org, method, path, status, code):
    body = _assert_error_shape(getattr(key_client(org), method)(path), status)
    assert body["code"] == code


def test_a_non_json_content_type_is_a_415_in_the_shape(key_client, org):
    response = key_client(org).generic(
        "POST", "/api/v1/monitors/", b"name=shop", content_type="text/plain"
    )
    assert _assert_error_shape(response, 415)["code"] == "unsupported_media_type"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (404, "not_found"),
        (405, "method_not_allowed"),
        (413, "payload_too_large"),
        (500, "server_error"),
    ],
)
def test_an_html_error_page_under_api_is_rewritten_into_the_shape(rf, status, code):
    # Django's own error pages (its 404 and 500, in DEBUG the technical ones) are HTML; a view
    # answering one stands in for them here.
    from django.http import HttpResponse

    page = HttpResponse("<h1>oops</h1>", status=status, content_type="text/html")
    page["Allow"] = "GET"
    response = ApiErrorMiddleware(lambda request: page)(rf.get("/api/v1/anything"))
    body = _assert_error_shape(response, status)
    assert body["code"] == code
    assert response["Allow"] == "GET"


def test_an_html_page_outside_api_is_left_alone(rf):
    from django.http import HttpResponse

    page = HttpResponse("<h1>admin</h1>", status=404, content_type="text/html")
    assert ApiErrorMiddleware(lambda request: page)(rf.get("/admin/nothing")) is page
