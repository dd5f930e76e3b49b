"""OTLP/HTTP receivers, spoken to as an OpenTelemetry exporter does: protobuf and JSON bodies
built with the opentelemetry-proto classes, gzip, the API key in a header, and answers checked
against the OTLP/HTTP specification (response messages, Status bodies, statuses)."""

from __future__ import annotations

import gzip
import json
import time

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2

from apps.monitors.models import MetricSample
from apps.plans.models import Limit, UsageCounter
from apps.plans.services import limit_override_set
from apps.telemetry.models import LogLine
from apps.telemetry.otlp import Status
from tests.telemetry.otlp_payloads import (
    counter,
    gauge,
    histogram,
    log_record,
    logs_request,
    metrics_request,
)

pytestmark = pytest.mark.django_db
PROTO = "application/x-protobuf"
TRACE = bytes(range(16))
SPAN = bytes(range(8))


def _post(client, path, body: bytes, content_type=PROTO, **headers):
    return client.generic("POST", path, body, content_type=content_type, **headers)


def test_protobuf_logs_are_stored_with_service_name_as_source(key_client, org):
    request = logs_request(
        "checkout",
        [
            log_record(
                "payment failed: card declined", severity=17, order=42, trace_id=TRACE, span_id=SPAN
            ),
            log_record("cart loaded", severity=9),
            log_record("debugging", severity=0, text="DEBUG"),
        ],
        **{"host.name": "web-1"},
    )
    response = _post(key_client(org), "/v1/logs", request.SerializeToString())

    assert response.status_code == 200
    assert response["Content-Type"] == PROTO
    answer = logs_service_pb2.ExportLogsServiceResponse.FromString(response.content)
    assert not answer.HasField("partial_success")  # full success leaves it unset
    lines = {line.message: line for line in LogLine.objects.all()}
    failed = lines["payment failed: card declined"]
    assert (failed.source, failed.level, failed.organization_id) == ("checkout", "error", org.pk)
    assert failed.attributes == {"order": 42, "resource": {"host.name": "web-1"}}
    assert (failed.trace_id, failed.span_id) == (TRACE.hex(), SPAN.hex())
    assert lines["cart loaded"].level == "info"
    assert lines["debugging"].level == "debug"  # no number: the severity text decides


def test_gzip_bodies_are_accepted(key_client, org):
    request = logs_request("api", [log_record(f"line {i}") for i in range(50)])
    body = gzip.compress(request.SerializeToString())
    response = _post(key_client(org), "/v1/logs", body, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200
    assert LogLine.objects.filter(source="api").count() == 50


def test_json_encoding_with_hex_ids_is_answered_in_json(key_client, org):
    request = logs_request("api", [log_record("hello json", severity=13)])
    document = json_format.MessageToDict(request)
    record = document["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    record["traceId"] = TRACE.hex()  # OTLP/JSON: hex, not base64
    response = _post(
        key_client(org), "/v1/logs", json.dumps(document).encode(), content_type="application/json"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {}
    line = LogLine.objects.get()
    assert (line.message, line.level, line.trace_id) == ("hello json", "warn", TRACE.hex())


def test_an_empty_request_is_a_success(key_client, org):
    # OTLP/HTTP: "If the server receives an empty request ... respond with success"
    empty_proto = _post(key_client(org), "/v1/metrics", b"")
    assert empty_proto.status_code == 200
    empty_json = _post(key_client(org), "/v1/logs", b"{}", content_type="application/json")
    assert empty_json.status_code == 200
    nothing = key_client(org).generic("POST", "/v1/logs", b"", content_type="")
    assert nothing.status_code == 400  # no body, no encoding: not an export at all
    assert not LogLine.objects.exists()


def test_a_missing_service_name_is_unknown_service(key_client, org):
    _post(key_client(org), "/v1/logs", logs_request(None, [log_record("x")]).SerializeToString())
    assert LogLine.objects.get().source == "unknown_service"


def test_records_from_the_future_are_rejected_as_a_partial_success(key_client, org):
    later = time.time_ns() + 3600 * 10**9
    request = logs_request("api", [log_record("now"), log_record("later", at_ns=later)])
    response = _post(key_client(org), "/v1/logs", request.SerializeToString())
    assert response.status_code == 200
    answer = logs_service_pb2.ExportLogsServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_log_records == 1
    assert "future" in answer.partial_success.error_message
    assert list(LogLine.objects.values_list("message", flat=True)) == ["now"]


def _status(response) -> Status:
    return Status.FromString(response.content)


def test_an_undecodable_body_is_400_with_a_status_message(key_client, org):
    response = _post(key_client(org), "/v1/logs", b"\xff\xff\xff\xff not protobuf")
    assert response.status_code == 400
    assert response["Content-Type"] == PROTO
    assert "protobuf" in _status(response).message
    bad_json = _post(key_client(org), "/v1/logs", b"{", content_type="application/json")
    assert bad_json.status_code == 400
    assert "JSON" in bad_json.json()["message"]
    assert not LogLine.objects.exists()


def test_bad_gzip_is_400(key_client, org):
    response = _post(key_client(org), "/v1/logs", b"not gzip", HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert "gzip" in _status(response).message


@pytest.mark.parametrize(
    ("content_type", "encoding"),
    [("text/plain", ""), ("application/xml", ""), (PROTO, "br")],
)
def test_unsupported_content_types_and_encodings_are_415(key_client, org, content_type, encoding):
    headers = {"HTTP_CONTENT_ENCODING": encoding} if encoding else {}
    response = _post(key_client(org), "/v1/logs", b"x", content_type=content_type, **headers)
    assert response.status_code == 415
    assert _status(response).message


def test_without_a_key_it_is_401_and_a_read_key_is_403(key_client, org, anon):
    body = logs_request("api", [log_record("x")]).SerializeToString()
    assert _post(anon, "/v1/logs", body).status_code == 401
    assert _post(key_client(org, scopes=("read",)), "/v1/logs", body).status_code == 403
    assert not LogLine.objects.exists()


def test_over_the_monthly_log_limit_it_is_429_with_retry_after_and_nothing_is_stored(
    key_client, org
):
    limit_override_set(org=org, limit=Limit.LOG_LINES_PER_MONTH, value=5, reason="test")
    client = key_client(org)
    ok = _post(client, "/v1/logs", logs_request("a", [log_record("x")] * 4).SerializeToString())
    assert ok.status_code == 200
    over = _post(client, "/v1/logs", logs_request("a", [log_record("y")] * 2).SerializeToString())
    assert over.status_code == 429
    assert int(over["Retry-After"]) > 0
    assert "log_lines_per_month" in _status(over).message
    assert LogLine.objects.count() == 4
    assert UsageCounter.objects.get(metric="log_lines").value == 4


def test_metrics_become_samples_of_the_service(key_client, org):
    request = metrics_request(
        "checkout",
        [
            gauge("system.cpu.utilization", [0.5]),
            counter("HTTP Requests/Total", 1200),
            histogram("http.server.duration", count=10, total=2.5, low=0.01, high=1.2),
        ],
    )
    response = _post(key_client(org), "/v1/metrics", request.SerializeToString())
    assert response.status_code == 200
    answer = metrics_service_pb2.ExportMetricsServiceResponse.FromString(response.content)
    assert not answer.HasField("partial_success")
    samples = dict(MetricSample.objects.filter(source="checkout").values_list("name", "value"))
    assert samples == {
        "system.cpu.utilization": 0.5,
        "http_requests_total": 1200.0,
        "http.server.duration.count": 10.0,
        "http.server.duration.sum": 2.5,
        "http.server.duration.min": 0.01,
        "http.server.duration.max": 1.2,
    }
    usage = key_client(org).get("/api/v1/usage").json()["usage"]
    assert usage["metric_samples"]["used"] == 6


def test_points_without_a_recorded_value_are_rejected_as_partial_success(key_client, org):
    metric = gauge("queue.depth", [3.0, 4.0])
    metric.gauge.data_points[1].flags = metrics_pb2.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
    request = metrics_request("worker", [metric])
    body = json_format.MessageToJson(request).encode()
    response = _post(key_client(org), "/v1/metrics", body, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["partialSuccess"]["rejectedDataPoints"] == "1"
    assert list(MetricSample.objects.values_list("value", flat=True)) == [3.0]


def test_over_the_monthly_sample_limit_metrics_are_429(key_client, org):
    limit_override_set(org=org, limit=Limit.METRIC_SAMPLES_PER_MONTH, value=1, reason="test")
    request = metrics_request("worker", [gauge("a", [1.0, 2.0])])
    response = _post(key_client(org), "/v1/metrics", request.SerializeToString())
    assert response.status_code == 429
    assert "Retry-After" in response
    assert not MetricSample.objects.exists()


def test_each_key_writes_into_its_own_organization(key_client, org, other_org):
    _post(key_client(org), "/v1/logs", logs_request("a", [log_record("mine")]).SerializeToString())
    _post(
        key_client(other_org),
        "/v1/logs",
        logs_request("a", [log_record("theirs")]).SerializeToString(),
    )
    assert set(LogLine.objects.values_list("organization__slug", "message")) == {
        ("acme", "mine"),
        ("globex", "theirs"),
    }
