"""OTLP/HTTP: decoding export requests into rows, and encoding the answers.

Bodies are decoded by the classes of the official `opentelemetry-proto` package (binary
protobuf, or the protobuf JSON mapping with OTLP's hex trace and span ids), never by hand.
What is decoded here is only shaped into rows; storing, metering and limits are the services'.

Answers follow the OTLP/HTTP specification: 200 with an Export<signal>ServiceResponse (its
`partial_success` set when some records were rejected), and for failures a `google.rpc.Status`
in the encoding of the request (400 bad data, 415 an unsupported content type or encoding, 429
with `Retry-After` when the caller should come back later).
"""

from __future__ import annotations

import base64
import json
import math
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2

from apps.telemetry.models import Level

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# Content types a client may send, and the encoding each means.
CONTENT_TYPES = {PROTOBUF: PROTOBUF, "application/protobuf": PROTOBUF, JSON: JSON}

#: a decompressed body may be at most this large (a small gzip body can expand enormously)
MAX_DECOMPRESSED_BYTES = 32 * 1024 * 1024
#: log records or data points one request may carry (an OTel Collector's batch processor
#: sends 8,192 by default)
MAX_ITEMS = 20_000
#: longer messages are cut here (a tsvector holds at most 1 MB, and a log line this long is
#: a dump, not a line)
MAX_MESSAGE_CHARS = 32_768
MAX_FUTURE = timedelta(minutes=5)
UNKNOWN_SERVICE = "unknown_service"

_SOURCE_CHARS = re.compile(r"[^A-Za-z0-9_.:-]")
_NAME_CHARS = re.compile(r"[^a-z0-9_.]")


class OtlpError(Exception):
    """A request the OTLP endpoint refuses: `status` is the HTTP status of the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --- google.rpc.Status, the body of every failure --------------------------------------------
# Defined from its descriptor (fields 1 code, 2 message; `details` is optional and unused) in a
# private pool, rather than adding googleapis-common-protos for one two-field message.
def _status_class() -> type[Message]:
    proto = descriptor_pb2.FileDescriptorProto(
        name="healthorch/google_rpc_status.proto", package="google.rpc", syntax="proto3"
    )
    message = proto.message_type.add(name="Status")
    fd = descriptor_pb2.FieldDescriptorProto
    message.field.add(
        name="code", number=1, type=fd.TYPE_INT32, label=fd.LABEL_OPTIONAL, json_name="code"
    )
    message.field.add(
        name="message",
        number=2,
        type=fd.TYPE_STRING,
        label=fd.LABEL_OPTIONAL,
        json_name="message",
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))


Status = _status_class()
# google.rpc.Code of each HTTP status we answer (the specification says clients may ignore it)
_RPC_CODES = {400: 3, 401: 16, 402: 8, 403: 7, 404: 5, 413: 3, 415: 3, 429: 8, 503: 14}


def encode(message: Message, encoding: str) -> bytes:
    if encoding == JSON:
        return json_format.MessageToJson(message, indent=None).encode()
    return message.SerializeToString()


def status_body(http_status: int, text: str, encoding: str) -> bytes:
    return encode(Status(code=_RPC_CODES.get(http_status, 2), message=text), encoding)


# --- requests --------------------------------------------------------------------------------


def encoding_of(content_type: str) -> str | None:
    """The encoding a Content-Type header names, or None if we do not speak it."""
    media = content_type.split(";", 1)[0].strip().lower()
    return CONTENT_TYPES.get(media)


def decompress(body: bytes, content_encoding: str) -> bytes:
    coding = content_encoding.strip().lower()
    if coding in ("", "identity"):
        return body
    if coding != "gzip":
        raise OtlpError(415, f"Content-Encoding {coding!r} is not supported; use gzip.")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, MAX_DECOMPRESSED_BYTES)
        if inflater.unconsumed_tail:
            raise OtlpError(
                400, f"The body expands past {MAX_DECOMPRESSED_BYTES} bytes; send smaller batches."
            )
        out += inflater.flush()
    except zlib.error as exc:
        raise OtlpError(400, f"The body is not valid gzip: {exc}.") from None
    if not inflater.eof:
        raise OtlpError(400, "The gzip body is truncated.")
    return out


def _hex_ids_to_base64(document: Any, keys: Iterable[str]) -> None:
    # OTLP/JSON writes trace and span ids as hex, where the protobuf JSON mapping expects
    # base64 for bytes: convert in place before the parser reads them.
    wanted = set(keys)
    pending = [document]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key in wanted and isinstance(value, str):
                    try:
                        item[key] = base64.b64encode(bytes.fromhex(value)).decode()
                    except ValueError:
                        raise OtlpError(400, f"{key} must be hex.") from None
                elif isinstance(value, dict | list):
                    pending.append(value)
        elif isinstance(item, list):
            pending.extend(item)


_ID_KEYS = ("traceId", "spanId", "trace_id", "span_id")


def parse(body: bytes, encoding: str, message_class: type[Message]) -> Message:
    """The export request in `body`, or OtlpError(400) naming what is wrong."""
    message = message_class()
    if encoding == PROTOBUF:
        try:
            message.ParseFromString(body)
        except (DecodeError, RecursionError) as exc:
            raise OtlpError(400, f"The body is not a valid protobuf message: {exc}") from None
        return message
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise OtlpError(400, f"The body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise OtlpError(400, "The body must be a JSON object.")
    _hex_ids_to_base64(document, _ID_KEYS)
    try:
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, ValueError, TypeError) as exc:
        raise OtlpError(400, f"The body is not a valid OTLP JSON request: {exc}") from None
    return message


def parse_logs(body: bytes, encoding: str) -> logs_service_pb2.ExportLogsServiceRequest:
    return parse(body, encoding, logs_service_pb2.ExportLogsServiceRequest)


def parse_metrics(body: bytes, encoding: str) -> metrics_service_pb2.ExportMetricsServiceRequest:
    return parse(body, encoding, metrics_service_pb2.ExportMetricsServiceRequest)


# --- values ----------------------------------------------------------------------------------


def any_value(value: Any) -> Any:
    """An OTLP AnyValue as plain JSON (bytes as base64)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if kind == "double_value" and not math.isfinite(value.double_value):
        return str(value.double_value)  # JSON columns refuse NaN and infinities
    return getattr(value, kind)


def attributes(pairs: Iterable[Any]) -> dict[str, Any]:
    out = {}
    for kv in pairs:
        # The scalar kinds most attributes are, read without `any_value`'s dispatch: this
        # runs for every attribute of every record.
        value = kv.value
        kind = value.WhichOneof("value")
        if kind == "string_value" or kind == "int_value" or kind == "bool_value":
            item = getattr(value, kind)
        else:
            item = any_value(value)
        key = kv.key
        out[_clean(key) if "\x00" in key else key] = item
    return out


def _clean(text: str) -> str:
    # PostgreSQL cannot store NUL in text or JSON.
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def source_name(resource_attributes: dict[str, Any]) -> str:
    """`service.name` made into a source name ([A-Za-z0-9_.:-]{1,64})."""
    name = resource_attributes.get("service.name")
    if not isinstance(name, str) or not name.strip():
        return UNKNOWN_SERVICE
    return _SOURCE_CHARS.sub("_", name.strip())[:64]


def metric_name(name: str) -> str:
    """An OTel instrument name made into a metric name ([a-z0-9_.]{1,64})."""
    return _NAME_CHARS.sub("_", name.lower())[:64] or "unnamed"


def level_of(severity_number: int, severity_text: str) -> str:
    """OTel's SeverityNumber ranges (1-4 trace ... 21-24 fatal); the text if the number is
    unspecified; info when neither says."""
    if 1 <= severity_number <= 24:
        return _BY_RANGE[(severity_number - 1) // 4]
    return _BY_TEXT.get(severity_text.strip().lower(), Level.INFO)


_BY_RANGE = [Level.TRACE, Level.DEBUG, Level.INFO, Level.WARN, Level.ERROR, Level.FATAL]
_BY_TEXT = {
    "trace": Level.TRACE,
    "debug": Level.DEBUG,
    "info": Level.INFO,
    "information": Level.INFO,
    "notice": Level.INFO,
    "warn": Level.WARN,
    "warning": Level.WARN,
    "error": Level.ERROR,
    "err": Level.ERROR,
    "critical": Level.FATAL,
    "fatal": Level.FATAL,
    "emergency": Level.FATAL,
    "alert": Level.FATAL,
}


def _time(unix_nano: int) -> datetime:
    return datetime.fromtimestamp(unix_nano / 1e9, tz=UTC)


@dataclass
class Decoded:
    """Rows decoded from one export request, and what was rejected and why."""

    rows: list[tuple] = field(default_factory=list)
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    def reject(self, count: int, reason: str) -> None:
        self.rejected += count
        if reason not in self.reasons:
            self.reasons.append(reason)

    @property
    def message(self) -> str:
        return "; ".join(self.reasons)


def log_rows(request: Any, *, now: datetime) -> Decoded:
    """(ts, source, level, message, attributes, trace_id, span_id) per log record.

    The time is the record's, else when it was observed, else now. A record more than five
    minutes in the future is rejected (counted in the partial success), not stored.
    """
    out = Decoded()
    out.rows = list(iter_log_rows(request, now=now, out=out))
    return out


def iter_log_rows(request: Any, *, now: datetime, out: Decoded) -> Iterator[tuple]:
    """`log_rows` as it goes: the rows are yielded while the records are read (so storage
    can send the first rows while the last are being shaped), and `out` counts the rejected
    ones. The record limit is checked here, before the first row."""
    total = sum(len(s.log_records) for r in request.resource_logs for s in r.scope_logs)
    if total > MAX_ITEMS:
        raise OtlpError(400, f"At most {MAX_ITEMS} log records per request; send smaller batches.")
    return _log_rows(request, now, out)


def _log_rows(request: Any, now: datetime, out: Decoded) -> Iterator[tuple]:
    latest = now + MAX_FUTURE
    for resource_logs in request.resource_logs:
        resource = attributes(resource_logs.resource.attributes)
        source = source_name(resource)
        resource.pop("service.name", None)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                nanos = record.time_unix_nano or record.observed_time_unix_nano
                ts = _time(nanos) if nanos else now
                if ts > latest:
                    out.reject(1, "log records more than 5 minutes in the future")
                    continue
                body = record.body
                kind = body.WhichOneof("value")
                if kind == "string_value":
                    message = body.string_value
                elif kind is None:
                    message = ""
                else:
                    message = json.dumps(any_value(body), separators=(",", ":"))
                attrs = attributes(record.attributes)
                if resource:
                    attrs["resource"] = resource
                if record.event_name:
                    attrs["event.name"] = record.event_name
                if len(message) > MAX_MESSAGE_CHARS:
                    message = message[:MAX_MESSAGE_CHARS]
                yield (
                    ts,
                    source,
                    level_of(record.severity_number, record.severity_text),
                    _clean(message) if "\x00" in message else message,
                    attrs,
                    record.trace_id.hex(),
                    record.span_id.hex(),
                )


def metric_rows(request: Any, *, now: datetime) -> Decoded:
    """(source, name, value, ts) per data point.

    Gauges and sums give one sample per point under the instrument's name; histograms and
    summaries give `<name>.count` and `<name>.sum` (and `.min`, `.max` where sent). The
    points' own attributes are not kept: points of one instrument with different attributes
    become samples of one series. A point with no value or a non-finite one is rejected.
    """
    out = Decoded()
    total = 0
    latest = now + MAX_FUTURE
    for resource_metrics in request.resource_metrics:
        source = source_name(attributes(resource_metrics.resource.attributes))
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                name = metric_name(metric.name)
                kind = metric.WhichOneof("data")
                points = getattr(metric, kind).data_points if kind else []
                total += len(points)
                if total > MAX_ITEMS:
                    raise OtlpError(
                        400, f"At most {MAX_ITEMS} data points per request; send smaller batches."
                    )
                for point in points:
                    ts = _time(point.time_unix_nano) if point.time_unix_nano else now
                    if ts > latest:
                        out.reject(1, "data points more than 5 minutes in the future")
                        continue
                    if point.flags & 1:  # FLAG_NO_RECORDED_VALUE: a gap, not a zero
                        out.reject(1, "data points flagged as having no recorded value")
                        continue
                    values = _point_values(name, kind, point)
                    if values is None:
                        out.reject(1, "data points without a finite value")
                        continue
                    out.rows.extend((source, n, v, ts) for n, v in values)
    return out


def _point_values(name: str, kind: str, point: Any) -> list[tuple[str, float]] | None:
    if kind in ("gauge", "sum"):
        which = point.WhichOneof("value")
        if which is None:
            return None
        value = float(getattr(point, which))
        return [(name, value)] if math.isfinite(value) else None
    values = [(f"{name}.count"[:64], float(point.count)), (f"{name}.sum"[:64], point.sum)]
    for extra in ("min", "max"):
        if kind != "summary" and point.HasField(extra):
            values.append((f"{name}.{extra}"[:64], getattr(point, extra)))
    if not all(math.isfinite(v) for _, v in values):
        return None
    return values


def logs_response(decoded: Decoded) -> Message:
    response = logs_service_pb2.ExportLogsServiceResponse()
    return _partial_success(response, decoded, "rejected_log_records")


def metrics_response(decoded: Decoded) -> Message:
    response = metrics_service_pb2.ExportMetricsServiceResponse()
    return _partial_success(response, decoded, "rejected_data_points")


def _partial_success(response: Message, decoded: Decoded, rejected_field: str) -> Message:
    """The export response, saying how many records were rejected and why, if any were."""
    if decoded.rejected:
        setattr(response.partial_success, rejected_field, decoded.rejected)
        response.partial_success.error_message = f"Rejected {decoded.message}."
    return response
