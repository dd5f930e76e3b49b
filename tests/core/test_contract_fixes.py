"""What the fuzzer found, kept as plain cases: page sizes are whole numbers, text fields take
text, and the schema lists every status and shape the API answers."""

from __future__ import annotations

import pytest

LISTS = ["/api/v1/monitors/", "/api/v1/incidents/", "/api/v1/notifications/"]


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    return response.json()


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("size", ["0", "-1", "abc", "1.5", "", "null", "\u0661"])
def test_a_page_size_that_is_not_a_whole_number_is_a_400(owner, client_for, path, size):
    response = client_for(owner).get(path, {"page_size": size})
    assert response.status_code == 400, response.content[:300]
    assert response.json()["fields"] == {"page_size": ["A whole number of at least 1."]}


@pytest.mark.parametrize("path", LISTS)
def test_a_page_size_over_the_maximum_is_lowered_to_it(owner, client_for, path):
    assert client_for(owner).get(path, {"page_size": "100000"}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("post", "/api/v1/incidents/", {"name": "x", "description": 0}, "description"),
        ("post", "/api/v1/incidents/", {"name": 5}, "name"),
        ("patch", "/api/v1/organization", {"name": True}, "name"),
        ("patch", "/api/v1/organization", {"slug": 0}, "slug"),
    ],
)
def test_a_number_or_boolean_for_a_text_field_is_a_400(
    owner, client_for, method, path, body, field
):
    response = getattr(client_for(owner), method)(path, body, format="json")
    assert response.status_code == 400, response.content[:300]
    assert field in response.json()["fields"]


def test_every_api_operation_lists_the_errors_it_can_meet(schema):
    for path, operations in schema["paths"].items():
        if not path.startswith("/api/"):
            continue  # /billing/...: pages of the product, not the API's middleware
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert "400" in codes, f"{method} {path}"
            if operation.get("security") and {} not in operation["security"]:
                assert {"401", "403", "404", "429"} <= codes, f"{method} {path}"


def test_the_error_schema_allows_nested_field_errors(schema):
    fields = schema["components"]["schemas"]["Error"]["properties"]["fields"]
    nested = fields["additionalProperties"]["anyOf"]
    assert {"type": "object"} in nested
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {"error", "detail", "code"}


def test_cursor_lists_under_a_detail_route_have_no_count(schema):
    for path in ("/api/v1/monitors/{id}/results/", "/api/v1/incidents/{id}/timeline/"):
        ref = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        name = ref["schema"]["$ref"].rsplit("/", 1)[-1]
        assert "count" not in schema["components"]["schemas"][name]["properties"], path
        names = {p["name"] for p in schema["paths"][path]["get"]["parameters"]}
        assert "cursor" in names, path
        assert "page" not in names, path


def test_nullable_read_fields_say_so(schema):
    field = schema["components"]["schemas"]["ReportSettings"]["properties"]["last_sent_period"]
    assert field["nullable"] is True
