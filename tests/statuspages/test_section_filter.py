"""`status_page` filters the section list; `page` is the list's page number (the two shared one
name before, so the schema could not describe either). A status page's id in `page` still
filters, for clients written before the rename."""

from __future__ import annotations

import pytest

from tests.factories import make_monitor
from tests.statuspages.conftest import make_page, make_section

SECTIONS = "/api/v1/status-page-sections/"


@pytest.fixture
def pages(org, pro):
    monitor = make_monitor(org)
    first, second = make_page(org, slug="first"), make_page(org, slug="second")
    make_section(first, "A", [monitor])
    make_section(first, "B", [monitor], position=1)
    make_section(second, "C", [monitor])
    return first, second


def _names(response) -> list[str]:
    assert response.status_code == 200, response.content[:300]
    return sorted(section["name"] for section in response.json()["results"])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status_page={first}", ["A", "B"]),
        ("status_page={second}", ["C"]),
        ("page={first}", ["A", "B"]),  # the name before the rename
        ("", ["A", "B", "C"]),
        ("status_page={first}&page=1&page_size=1", ["A"]),
    ],
)
def test_sections_filter_by_status_page_and_page_by_number(
    client_for, owner, pages, query, expected
):
    first, second = pages
    url = f"{SECTIONS}?{query.format(first=first.pk, second=second.pk)}"
    assert _names(client_for(owner).get(url)) == expected


def test_page_numbers_walk_the_whole_list(client_for, owner, pages):
    client = client_for(owner)
    first = _names(client.get(f"{SECTIONS}?page=1&page_size=2"))
    second = _names(client.get(f"{SECTIONS}?page=2&page_size=2"))
    assert len(first) == 2
    assert sorted(first + second) == ["A", "B", "C"]


@pytest.mark.parametrize(
    ("query", "status"), [("status_page=nope", 400), ("page=nope", 404), ("page_size=0", 400)]
)
def test_bad_values_are_4xx_in_the_shape(client_for, owner, pages, query, status):
    response = client_for(owner).get(f"{SECTIONS}?{query}")
    assert response.status_code == status
    assert set(response.json()) >= {"error", "detail", "code"}


def test_an_outsider_filtering_by_our_status_page_sees_nothing(client_for, outsider, pages):
    first, _ = pages
    assert _names(client_for(outsider).get(f"{SECTIONS}?status_page={first.pk}")) == []
    assert _names(client_for(outsider).get(f"{SECTIONS}?page={first.pk}")) == []


def test_the_schema_names_the_filter_and_the_page_number_apart(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    parameters = schema["paths"][SECTIONS]["get"]["parameters"]
    by_name = {p["name"]: p for p in parameters}
    assert by_name["status_page"]["schema"]["format"] == "uuid"
    assert by_name["page"]["schema"]["type"] == "integer"
    assert [p["name"] for p in parameters].count("page") == 1
