"""OTLP export requests built with the official opentelemetry-proto classes, as an SDK would."""

from __future__ import annotations

import time

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2


def _kv(key: str, value) -> common_pb2.KeyValue:
    if isinstance(value, bool):
        any_value = common_pb2.AnyValue(bool_value=value)
    elif isinstance(value, int):
        any_value = common_pb2.AnyValue(int_value=value)
    elif isinstance(value, float):
        any_value = common_pb2.AnyValue(double_value=value)
    else:
        any_value = common_pb2.AnyValue(string_value=value)
    return common_pb2.KeyValue(key=key, value=any_value)


def resource(service: str | None, **attrs) -> resource_pb2.Resource:
    pairs = [_kv("service.name", service)] if service is not None else []
    return resource_pb2.Resource(attributes=pairs + [_kv(k, v) for k, v in attrs.items()])


def log_record(
    message: str,
    *,
    severity: int = 9,
    text: str = "",
    at_ns: int | None = None,
    trace_id: bytes = b"",
    span_id: bytes = b"",
    **attrs,
) -> logs_pb2.LogRecord:
    return logs_pb2.LogRecord(
        time_unix_nano=at_ns if at_ns is not None else time.time_ns(),
        severity_number=severity,
        severity_text=text,
        body=common_pb2.AnyValue(string_value=message),
        attributes=[_kv(k, v) for k, v in attrs.items()],
        trace_id=trace_id,
        span_id=span_id,
    )


def logs_request(
    service: str | None, records: list, **resource_attrs
) -> logs_service_pb2.ExportLogsServiceRequest:
    return logs_service_pb2.ExportLogsServiceRequest(
        resource_logs=[
            logs_pb2.ResourceLogs(
                resource=resource(service, **resource_attrs),
                scope_logs=[
                    logs_pb2.ScopeLogs(
                        scope=common_pb2.InstrumentationScope(name="test"), log_records=records
                    )
                ],
            )
        ]
    )


def gauge(name: str, values: list[float], *, at_ns: int | None = None) -> metrics_pb2.Metric:
    now = at_ns if at_ns is not None else time.time_ns()
    return metrics_pb2.Metric(
        name=name,
        gauge=metrics_pb2.Gauge(
            data_points=[
                metrics_pb2.NumberDataPoint(time_unix_nano=now, as_double=v) for v in values
            ]
        ),
    )


def counter(name: str, value: int) -> metrics_pb2.Metric:
    return metrics_pb2.Metric(
        name=name,
        sum=metrics_pb2.Sum(
            is_monotonic=True,
            aggregation_temporality=metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE,
            data_points=[metrics_pb2.NumberDataPoint(time_unix_nano=time.time_ns(), as_int=value)],
        ),
    )


def histogram(name: str, *, count: int, total: float, low: float, high: float):
    return metrics_pb2.Metric(
        name=name,
        histogram=metrics_pb2.Histogram(
            data_points=[
                metrics_pb2.HistogramDataPoint(
                    time_unix_nano=time.time_ns(),
                    count=count,
                    sum=total,
                    min=low,
                    max=high,
                    explicit_bounds=[0.1, 1.0],
                    bucket_counts=[1, count - 2, 1],
                )
            ]
        ),
    )


def metrics_request(service: str, metrics: list) -> metrics_service_pb2.ExportMetricsServiceRequest:
    return metrics_service_pb2.ExportMetricsServiceRequest(
        resource_metrics=[
            metrics_pb2.ResourceMetrics(
                resource=resource(service),
                scope_metrics=[metrics_pb2.ScopeMetrics(metrics=metrics)],
            )
        ]
    )
