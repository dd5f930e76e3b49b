"""The published API schema documents every telemetry endpoint, OTLP's included."""

from __future__ import annotations

import pytest
import yaml

pytestmark = pytest.mark.django_db


def test_the_schema_lists_the_telemetry_endpoints(anon):
    response = anon.get("/api/schema/")
    assert response.status_code == 200
    paths = yaml.safe_load(response.content)["paths"]
    for path, method in [
        ("/v1/logs", "post"),
        ("/v1/metrics", "post"),
        ("/api/v1/logs", "post"),
        ("/api/v1/logs", "get"),
        ("/api/v1/logs/tail", "get"),
        ("/api/v1/metrics/series", "get"),
        ("/api/v1/metrics/sources", "get"),
    ]:
        assert method in paths[path], (path, method)
    otlp = paths["/v1/logs"]["post"]
    assert set(otlp["requestBody"]["content"]) == {"application/x-protobuf", "application/json"}
    assert {"200", "400", "415", "429"} <= set(otlp["responses"])
    assert "text/event-stream" in paths["/api/v1/logs/tail"]["get"]["responses"]["200"]["content"]
