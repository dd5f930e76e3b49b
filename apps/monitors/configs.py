"""Per-kind monitor settings: validated, normalised, and split into public config and secret.

Used by the API, `import_services` and `apply_monitors`, so a monitor is valid the same way
whichever door it came in through. Targets are checked against the SSRF guard at save time
(an IP literal or a name that resolves to a private/reserved address is refused); the
checkers check again at run time.
"""

from __future__ import annotations

import re
import zoneinfo
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from croniter import croniter
from django.conf import settings
from rest_framework import serializers

from apps.core import ssrf
from apps.core.api import StrictSerializer
from apps.core.plugins import validate_headers
from apps.monitors.models import MonitorKind

_STATUS_RANGE = re.compile(r"^\s*(\d{3})\s*(?:-\s*(\d{3}))?\s*$")


def _guard_host(host: str, field: str, port: int = 0) -> None:
    allow = settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS
    try:
        ssrf.check_literal(host, allow_private=allow)
        if not allow:
            ssrf.resolve_blocking(host, port or 80, allow_private=False)
    except ssrf.BlockedTarget as exc:
        raise serializers.ValidationError({field: [f"Target refused: {exc}."]}) from exc
    except ssrf.ResolutionFailed:
        pass  # may resolve later; the check will report a DNS error until it does


class _StatusRanges(serializers.Field):
    """`[200, "300-399"]` (or the stored `[[200, 200], [300, 399]]`) -> `[[200, 200], [300, 399]]`."""

    def to_internal_value(self, data: Any) -> list[list[int]]:
        if not isinstance(data, list) or not data or len(data) > 20:
            raise serializers.ValidationError(
                "A list of 1-20 status codes or ranges like '200-299'."
            )
        ranges = []
        for item in data:
            if isinstance(item, int) and not isinstance(item, bool):
                lo = hi = item
            elif (
                isinstance(item, list)
                and len(item) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) for x in item)
            ):
                lo, hi = item  # the stored form, so a GET's config can be PATCHed back
            elif isinstance(item, str) and (m := _STATUS_RANGE.match(item)):
                lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
            else:
                raise serializers.ValidationError(f"{item!r} is not a status code or range.")
            if not (100 <= lo <= hi <= 599):
                raise serializers.ValidationError(f"{item!r} is outside 100-599.")
            ranges.append([lo, hi])
        return ranges

    def to_representation(self, value: Any) -> Any:
        return value


class HttpConfig(StrictSerializer):
    url = serializers.URLField(max_length=2000)
    method = serializers.ChoiceField(
        choices=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"], default="GET"
    )
    headers = serializers.DictField(child=serializers.CharField(max_length=4000), default=dict)
    body = serializers.CharField(max_length=65536, required=False, allow_blank=True, default="")
    follow_redirects = serializers.BooleanField(default=True)
    verify_tls = serializers.BooleanField(default=True)
    expected_status = _StatusRanges(default=lambda: [[200, 399]])
    assertions = serializers.ListField(child=serializers.CharField(max_length=500), default=list)
    ca_pem = serializers.CharField(max_length=20000, required=False, allow_blank=True)

    def validate_url(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"}:
            raise serializers.ValidationError("Only http and https URLs can be checked.")
        _guard_host(
            parts.hostname or "", "url", parts.port or (443 if parts.scheme == "https" else 80)
        )
        return url

    def validate_headers(self, headers: dict) -> dict:
        # Refused at save: a line break would otherwise only fail at check time.
        return validate_headers(headers, reserved=(), limit=50)

    def validate_assertions(self, texts: list[str]) -> list[str]:
        from apps.monitors.assertions import AssertionSyntaxError, compile_many

        try:
            compile_many(texts)
        except AssertionSyntaxError as exc:
            raise serializers.ValidationError(f"assertion {exc.index}: {exc}") from exc
        return texts


class _HostPort(StrictSerializer):
    host = serializers.CharField(max_length=253)
    port = serializers.IntegerField(min_value=1, max_value=65535)

    def validate(self, attrs: dict) -> dict:
        _guard_host(attrs["host"], "host", attrs.get("port", 0))
        return attrs


class TcpConfig(_HostPort):
    pass


class TlsConfig(_HostPort):
    port = serializers.IntegerField(min_value=1, max_value=65535, default=443)
    expiry_warning_days = serializers.IntegerField(min_value=1, max_value=365, default=14)
    server_name = serializers.CharField(max_length=253, required=False)
    ca_pem = serializers.CharField(max_length=20000, required=False, allow_blank=True)


class SmtpConfig(_HostPort):
    port = serializers.IntegerField(min_value=1, max_value=65535, default=25)
    tls = serializers.ChoiceField(choices=["starttls", "implicit", "none"], required=False)
    expiry_warning_days = serializers.IntegerField(min_value=1, max_value=365, default=14)
    server_name = serializers.CharField(max_length=253, required=False)
    ca_pem = serializers.CharField(max_length=20000, required=False, allow_blank=True)

    def validate(self, attrs: dict) -> dict:
        attrs = super().validate(attrs)
        attrs.setdefault("tls", "implicit" if attrs["port"] == 465 else "starttls")
        return attrs


class IcmpConfig(StrictSerializer):
    host = serializers.CharField(max_length=253)
    count = serializers.IntegerField(min_value=1, max_value=10, default=3)
    interval_ms = serializers.IntegerField(min_value=50, max_value=2000, default=200)

    def validate_host(self, host: str) -> str:
        _guard_host(host, "host")
        return host


class GrpcConfig(_HostPort):
    service = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    tls = serializers.BooleanField(default=False)
    server_name = serializers.CharField(max_length=253, required=False)
    ca_pem = serializers.CharField(max_length=20000, required=False, allow_blank=True)


# Kubernetes object names: DNS-1123 labels/subdomains (lower case, digits, '-' and '.').
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class KubernetesConfig(StrictSerializer):
    """The token is split off as the monitor's secret (stored encrypted, never returned)."""

    server = serializers.URLField(max_length=2000)
    ca_pem = serializers.CharField(max_length=20000, required=False, allow_blank=True)
    target = serializers.ChoiceField(
        choices=["readyz", "deployment", "statefulset"], default="readyz"
    )
    namespace = serializers.RegexField(_K8S_NAME, max_length=253, default="default")
    name = serializers.RegexField(_K8S_NAME, max_length=253, required=False)
    token = serializers.CharField(max_length=8000, required=False, write_only=True)

    def validate_server(self, server: str) -> str:
        parts = urlsplit(server)
        if parts.scheme != "https":
            raise serializers.ValidationError("The API server's https:// URL.")
        _guard_host(parts.hostname or "", "server", parts.port or 443)
        return server.rstrip("/")

    def validate(self, attrs: dict) -> dict:
        if attrs["target"] != "readyz" and not attrs.get("name"):
            raise serializers.ValidationError({"name": [f"A {attrs['target']} needs a name."]})
        if "token" in attrs:
            attrs["_secret"] = attrs.pop("token")
        return attrs


class DnsConfig(StrictSerializer):
    name = serializers.CharField(max_length=253)
    record_type = serializers.ChoiceField(choices=["A", "AAAA", "CNAME", "MX", "TXT"], default="A")
    resolver = serializers.IPAddressField(required=False)
    resolver_port = serializers.IntegerField(min_value=1, max_value=65535, default=53)
    expected = serializers.ListField(child=serializers.CharField(max_length=500), default=list)

    def validate_resolver(self, value: str) -> str:
        if not settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS and ssrf.is_blocked_address(value):
            raise serializers.ValidationError("Target refused: a private or reserved resolver.")
        return value


class _SecretUrl(StrictSerializer):
    """A URL whose password is split off to be stored encrypted."""

    schemes: tuple[str, ...] = ()
    url_field = "url"

    def validate(self, attrs: dict) -> dict:
        raw = attrs[self.url_field]
        parts = urlsplit(raw)
        if parts.scheme not in self.schemes:
            raise serializers.ValidationError(
                {self.url_field: [f"Use a {' or '.join(self.schemes)} URL."]}
            )
        if not parts.hostname:
            raise serializers.ValidationError({self.url_field: ["The URL needs a host."]})
        _guard_host(parts.hostname, self.url_field, parts.port or 0)
        netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
        if parts.username:
            netloc = f"{parts.username}@{netloc}"
        attrs[self.url_field] = urlunsplit(parts._replace(netloc=netloc))
        attrs["_secret"] = parts.password or ""
        return attrs


class PostgresConfig(_SecretUrl):
    schemes = ("postgres", "postgresql")
    url_field = "dsn"
    dsn = serializers.CharField(max_length=2000)
    query = serializers.CharField(max_length=2000, default="SELECT 1")


class RedisConfig(_SecretUrl):
    schemes = ("redis", "rediss")
    url = serializers.CharField(max_length=2000)


class HeartbeatConfig(StrictSerializer):
    period_seconds = serializers.IntegerField(min_value=10, max_value=31_536_000, required=False)
    schedule = serializers.CharField(max_length=100, required=False)
    timezone = serializers.CharField(max_length=64, default="UTC")
    grace_seconds = serializers.IntegerField(min_value=0, max_value=604_800, default=300)

    def validate(self, attrs: dict) -> dict:
        if ("period_seconds" in attrs) == ("schedule" in attrs):
            raise serializers.ValidationError(
                {
                    "schedule": [
                        "Give exactly one of period_seconds or schedule (a cron expression)."
                    ]
                }
            )
        if "schedule" in attrs and not croniter.is_valid(attrs["schedule"]):
            raise serializers.ValidationError({"schedule": ["Not a valid cron expression."]})
        try:
            zoneinfo.ZoneInfo(attrs["timezone"])
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise serializers.ValidationError({"timezone": ["Unknown time zone."]}) from None
        return attrs


METRIC_NAME = re.compile(r"^[a-z0-9_.]{1,64}$")
# Sources are host or service labels ("api-1", "db.eu:5432"), so a little more is allowed.
METRIC_SOURCE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class MetricConfig(StrictSerializer):
    source = serializers.RegexField(METRIC_SOURCE, max_length=64)
    metric = serializers.RegexField(METRIC_NAME, max_length=64)
    operator = serializers.ChoiceField(choices=[">", ">=", "<", "<=", "==", "!="])
    threshold = serializers.FloatField()
    for_seconds = serializers.IntegerField(min_value=0, max_value=86_400, default=0)


CONFIGS: dict[str, type[StrictSerializer]] = {
    MonitorKind.HTTP: HttpConfig,
    MonitorKind.TCP: TcpConfig,
    MonitorKind.TLS: TlsConfig,
    MonitorKind.DNS: DnsConfig,
    MonitorKind.POSTGRES: PostgresConfig,
    MonitorKind.REDIS: RedisConfig,
    MonitorKind.SMTP: SmtpConfig,
    MonitorKind.ICMP: IcmpConfig,
    MonitorKind.GRPC: GrpcConfig,
    MonitorKind.KUBERNETES: KubernetesConfig,
    MonitorKind.HEARTBEAT: HeartbeatConfig,
    MonitorKind.METRIC: MetricConfig,
}


def validate_config(kind: str, data: Any) -> tuple[dict, str | None]:
    """Validate one kind's settings. Returns (public config, secret or None if none given).

    Raises serializers.ValidationError with messages keyed under `config`.
    """
    serializer = CONFIGS[kind](data=data)
    if not serializer.is_valid():
        raise serializers.ValidationError({"config": serializer.errors})
    config = dict(serializer.validated_data)
    secret = config.pop("_secret", None)
    return config, secret
