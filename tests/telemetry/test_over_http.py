"""Through a real gunicorn, as an OpenTelemetry exporter talks to healthorch: OTLP protobuf,
gzip-compressed, the API key in a header; then read back over the API."""

from __future__ import annotations

import gzip

import pytest
import requests
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2

from apps.telemetry.models import LogLine
from apps.tenants.services import api_key_create
from tests.factories import OrganizationFactory
from tests.plans.test_rate_limits_shared import _database_url
from tests.support import serve_gunicorn
from tests.telemetry.otlp_payloads import gauge, log_record, logs_request, metrics_request


@pytest.mark.django_db(transaction=True)
def test_an_exporter_posts_gzip_protobuf_and_reads_back_only_its_own_lines(org):
    other = OrganizationFactory(name="Other", slug="other")
    key = api_key_create(org=org, name="otel", scopes=["read", "write"]).secret
    other_key = api_key_create(org=other, name="otel", scopes=["read", "write"]).secret
    records = [log_record(f"order {i} failed: timeout", severity=17) for i in range(200)]
    body = gzip.compress(logs_request("checkout", records).SerializeToString())
    with serve_gunicorn({"DATABASE_URL": _database_url()}) as (_, port):
        base = f"http://127.0.0.1:{port}"
        headers = {
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
            "x-api-key": key,
        }
        response = requests.post(f"{base}/v1/logs", data=body, headers=headers, timeout=30)
        assert response.status_code == 200, response.content
        assert response.headers["Content-Type"] == "application/x-protobuf"
        logs_service_pb2.ExportLogsServiceResponse.FromString(response.content)

        metrics = metrics_request("checkout", [gauge("queue.depth", [4.0])]).SerializeToString()
        response = requests.post(
            f"{base}/v1/metrics",
            data=metrics,
            headers={**headers, "Content-Encoding": "identity"},
            timeout=30,
        )
        assert response.status_code == 200

        mine = requests.get(
            f"{base}/api/v1/logs",
            params={"q": "timeout", "page_size": 500},
            headers={"X-API-Key": key},
            timeout=30,
        ).json()
        theirs = requests.get(
            f"{base}/api/v1/logs", headers={"X-API-Key": other_key}, timeout=30
        ).json()
        sources = requests.get(
            f"{base}/api/v1/metrics/sources", headers={"X-API-Key": key}, timeout=30
        ).json()
        wrong = requests.post(
            f"{base}/v1/logs",
            data=b"{}",
            headers={"Content-Type": "text/plain", "x-api-key": key},
            timeout=30,
        )
    assert len(mine["results"]) == 200
    assert {row["source"] for row in mine["results"]} == {"checkout"}
    assert theirs["results"] == []
    assert [s["source"] for s in sources] == ["checkout"]
    assert wrong.status_code == 415
    assert LogLine.objects.filter(organization=org).count() == 200
