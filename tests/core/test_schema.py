import pytest

pytestmark = pytest.mark.django_db

ENDPOINTS = {
    "/api/v1/auth/register": {"post"},
    "/api/v1/auth/login": {"post"},
    "/api/dev/bootstrap": {"post"},
    "/api/v1/organization": {"get", "patch"},
    "/api/v1/members/": {"get", "post"},
    "/api/v1/members/{id}/": {"get", "patch", "delete"},
    "/api/v1/api-keys/": {"get", "post"},
    "/api/v1/api-keys/{id}/": {"get", "delete"},
}


@pytest.fixture
def schema(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_the_schema_is_openapi_3_and_lists_every_endpoint(schema):
    assert schema["openapi"].startswith("3.")
    for path, methods in ENDPOINTS.items():
        assert path in schema["paths"], path
        assert methods <= set(schema["paths"][path]), path


def test_every_endpoint_documents_its_error_responses(schema):
    for path, methods in ENDPOINTS.items():
        for method in methods:
            responses = schema["paths"][path][method]["responses"]
            errors = {code for code in responses if code.startswith(("4", "5"))}
            assert errors, f"{method.upper()} {path} documents no error response"
            if path.startswith("/api/v1/auth") or path.startswith("/api/dev"):
                continue
            assert {"401", "404"} <= errors, f"{method.upper()} {path}: {sorted(errors)}"


def test_api_key_security_scheme_is_documented(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["ApiKey"]["description"],
    }


def test_docs_page_is_served_without_a_cdn(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "cdn.jsdelivr" not in html
    assert "unpkg.com" not in html
