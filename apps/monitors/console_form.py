"""The console's monitor form: a field per setting of the monitor's kind (URL, method, expected
status, assertions...), regions as checkboxes and tags as chips, never a raw JSON box for a
tenant. Operators keep an "advanced: raw JSON" box for settings the fields do not cover.

Whatever the fields, the form validates exactly as the API does: the fields are gathered into
the kind's config and the whole is checked by the API's input serializer (per-kind config, the
SSRF guard on the target, secrets moved out of the config, regions and quorum), and its errors
are shown under the field they are about.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from django import forms
from django.conf import settings

from apps.monitors.models import MonitorKind


@dataclass(frozen=True)
class KindField:
    """One config key of one kind, as a form field."""

    key: str
    field: forms.Field
    #: how the text typed becomes the config value, and back
    kind: str = "text"  # text | int | float | lines | statuses | bool


def _text(label: str, *, required: bool = False, help_text: str = "", size: int = 60, **kw: Any):
    return forms.CharField(
        label=label,
        required=required,
        help_text=help_text,
        widget=forms.TextInput(attrs={"size": size}),
        **kw,
    )


def _int(label: str, *, help_text: str = "", **kw: Any) -> forms.IntegerField:
    return forms.IntegerField(label=label, required=False, help_text=help_text, **kw)


def _lines(label: str, help_text: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        help_text=help_text,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 70, "class": "vLargeTextField"}),
    )


def _host(label: str = "Host") -> KindField:
    return KindField("host", _text(label, size=40))


def _port() -> KindField:
    return KindField("port", _int("Port", min_value=1, max_value=65535), kind="int")


def _expiry_warning_days() -> KindField:
    field = _int("Warn days before expiry", min_value=1, max_value=365)
    return KindField("expiry_warning_days", field, kind="int")


def _choice(label: str, choices: list[tuple[str, str]]) -> forms.ChoiceField:
    return forms.ChoiceField(label=label, choices=choices, required=False)


HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

KIND_FIELDS: dict[str, list[KindField]] = {
    MonitorKind.HTTP: [
        KindField("url", _text("URL", help_text="http:// or https://; checked as the API checks.")),
        KindField("method", _choice("Method", [(m, m) for m in HTTP_METHODS])),
        KindField(
            "expected_status",
            _text(
                "Expected status",
                help_text="Codes or ranges, comma-separated: 200-399, 418.",
                size=30,
            ),
            kind="statuses",
        ),
        KindField(
            "assertions",
            _lines(
                "Assertions",
                'One per line, e.g. json.status == "ok" or body contains "welcome"; '
                "every one must hold for the check to be up.",
            ),
            kind="lines",
        ),
    ],
    MonitorKind.TCP: [
        _host(),
        _port(),
    ],
    MonitorKind.TLS: [
        _host(),
        _port(),
        _expiry_warning_days(),
    ],
    MonitorKind.DNS: [
        KindField("name", _text("Name to resolve", size=40)),
        KindField(
            "record_type",
            _choice("Record type", [(t, t) for t in ("A", "AAAA", "CNAME", "MX", "TXT")]),
        ),
        KindField("expected", _lines("Expected answers", "One per line; empty: any."), "lines"),
    ],
    MonitorKind.POSTGRES: [
        KindField("dsn", _text("Connection URL", help_text="postgres://user:password@host/db")),
        KindField("query", _text("Query", size=40)),
    ],
    MonitorKind.REDIS: [
        KindField("url", _text("Redis URL", help_text="redis://:password@host:6379/0")),
    ],
    MonitorKind.SMTP: [
        _host("Mail server"),
        _port(),
        KindField(
            "tls",
            _choice(
                "TLS",
                [
                    ("", "STARTTLS (implicit TLS on port 465)"),
                    ("starttls", "STARTTLS"),
                    ("implicit", "Implicit TLS"),
                    ("none", "None (plain SMTP)"),
                ],
            ),
        ),
        _expiry_warning_days(),
    ],
    MonitorKind.ICMP: [
        _host(),
        KindField("count", _int("Echo requests", min_value=1, max_value=10), kind="int"),
    ],
    MonitorKind.GRPC: [
        _host(),
        _port(),
        KindField(
            "service",
            _text("Service", size=40, help_text="Empty: the server as a whole."),
        ),
        KindField("tls", forms.BooleanField(label="TLS", required=False), kind="bool"),
    ],
    MonitorKind.KUBERNETES: [
        KindField("server", _text("API server URL", help_text="https://...:6443")),
        KindField(
            "target",
            _choice(
                "Check",
                [
                    ("readyz", "API server ready (/readyz)"),
                    ("deployment", "Deployment replicas"),
                    ("statefulset", "StatefulSet replicas"),
                ],
            ),
        ),
        KindField("namespace", _text("Namespace", size=30)),
        KindField("name", _text("Workload name", size=30)),
        KindField(
            "token",
            forms.CharField(
                label="Bearer token",
                required=False,
                widget=forms.PasswordInput(render_value=False, attrs={"size": 60}),
                help_text="Stored encrypted, never shown again; empty keeps the stored one.",
            ),
        ),
    ],
    MonitorKind.HEARTBEAT: [
        KindField("period_seconds", _int("Expected every (s)", min_value=10), kind="int"),
        KindField("schedule", _text("or on a cron schedule", size=20)),
        KindField("timezone", _text("Time zone", size=20)),
        KindField("grace_seconds", _int("Grace (s)", min_value=0), kind="int"),
    ],
    MonitorKind.METRIC: [
        KindField("source", _text("Source", size=30)),
        KindField("metric", _text("Metric", size=30)),
        KindField(
            "operator",
            _choice(
                "Alert when", [("", "-")] + [(o, o) for o in (">", ">=", "<", "<=", "==", "!=")]
            ),
        ),
        KindField("threshold", forms.FloatField(label="Threshold", required=False), "float"),
        KindField("for_seconds", _int("For (s)", min_value=0), kind="int"),
    ],
}


#: what the API takes for a key left out: a field showing it for a config without the key
#: leaves the config as it is (so saving an untouched form changes nothing)
DEFAULTS: dict[str, Any] = {
    "method": "GET",
    "expected_status": [[200, 399]],
    "assertions": [],
    "record_type": "A",
    "expected": [],
}


def field_name(kind: str, key: str) -> str:
    return f"cfg_{kind}_{key}"


def _to_text(value: Any, how: str) -> Any:
    if value is None:
        return ""
    if how == "lines":
        return "\n".join(str(v) for v in value)
    if how == "statuses":
        return ", ".join(
            (f"{lo}" if lo == hi else f"{lo}-{hi}")
            for lo, hi in (v if isinstance(v, list) else (v, v) for v in value)
        )
    return value


def _from_text(value: Any, how: str) -> Any:
    if how == "lines":
        return [line.strip() for line in (value or "").splitlines() if line.strip()]
    if how == "statuses":
        # The stored form ([[200, 399]]) where the text reads as codes and ranges, so an
        # unchanged field compares equal to the stored config; anything else goes to the
        # API's validation as typed, to be refused with its reason.
        out: list[Any] = []
        for part in (p for p in re.split(r"[\s,]+", value or "") if p):
            m = re.fullmatch(r"(\d{3})(?:-(\d{3}))?", part)
            out.append([int(m.group(1)), int(m.group(2) or m.group(1))] if m else part)
        return out
    return value


def _messages(detail: Any, within: str = "") -> list[str]:
    """DRF's nested error detail ({"url": ["..."]} under `config`) as flat, readable lines,
    each prefixed with its key unless that repeats the key it sits in."""
    if isinstance(detail, dict):
        return [
            line if key in ("non_field_errors", within) else f"{key}: {line}"
            for key, value in detail.items()
            for line in _messages(value, key)
        ]
    if isinstance(detail, list):
        return [line for item in detail for line in _messages(item, within)]
    return [str(detail)]


class TagsField(forms.CharField):
    """Tags typed as `a, b, c` (the chips script edits the same text)."""

    widget = forms.TextInput(attrs={"data-chips": "1", "size": 60})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(value)
        if isinstance(value, str) and value.startswith("["):
            try:
                return ", ".join(json.loads(value))
            except (ValueError, TypeError):
                return value
        return value

    def to_python(self, value: Any) -> list[str]:
        text = super().to_python(value) or ""
        return list(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))


class MonitorForm(forms.ModelForm):
    """Validates exactly as the API does (see the module's docstring). Plan limits are the
    services' (their refusal becomes the console's error message)."""

    regions = forms.MultipleChoiceField(
        label="Regions",
        choices=(),
        widget=forms.CheckboxSelectMultiple,
        help_text="Where the check runs; the quorum is how many must see it down.",
    )
    tags = TagsField(
        label="Tags",
        required=False,
        help_text="Comma-separated; shown as chips. Used by filters, alert routing and reports.",
    )
    raw_config = forms.BooleanField(
        label="Use the raw JSON below",
        required=False,
        help_text="Operators only: the JSON box replaces the fields above for this save.",
    )

    validated: dict[str, Any]
    #: set by the admin: whether the raw JSON box is offered (operators)
    advanced: bool = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["regions"].choices = [(r, r) for r in settings.HEALTHORCH_REGIONS]
        if "regions" not in self.initial and self.instance._state.adding:
            self.initial["regions"] = ["default"]
        adding = self.instance._state.adding
        if "slug" in self.fields and adding:
            self.fields["slug"].required = False
            self.fields["slug"].help_text = "Made from the name when left empty."
        config = self.instance.config or {}
        for kind, fields in KIND_FIELDS.items():
            for item in fields:
                name = field_name(kind, item.key)
                if name in self.fields and (adding or kind == self.instance.kind):
                    value = config.get(item.key, DEFAULTS.get(item.key))
                    self.initial.setdefault(name, _to_text(value, item.kind))

    def kind_of(self, cleaned: dict[str, Any]) -> str:
        return self.instance.kind if not self.instance._state.adding else cleaned.get("kind", "")

    def _config_from_fields(self, kind: str, cleaned: dict[str, Any]) -> dict[str, Any]:
        """The kind's config: the stored one (settings without a field here, such as headers,
        stay as they are) with each field's value over it; an empty field removes its key."""
        base = dict(self.instance.config or {}) if kind == self.instance.kind else {}
        for item in KIND_FIELDS.get(kind, []):
            name = field_name(kind, item.key)
            if name not in cleaned:
                continue
            value = _from_text(cleaned[name], item.kind)
            if item.key not in base and item.key in DEFAULTS and value == DEFAULTS[item.key]:
                continue
            if value in ("", None) or (item.kind == "statuses" and not value):
                base.pop(item.key, None)
            else:
                base[item.key] = value
        return base

    def clean(self) -> dict[str, Any]:
        from apps.monitors.api.serializers import MonitorInput

        cleaned = super().clean()
        adding = self.instance._state.adding
        kind = self.kind_of(cleaned)
        if not (self.advanced and cleaned.get("raw_config") and "config" in cleaned):
            cleaned["config"] = self._config_from_fields(kind, cleaned)
        # On a change, what differs from the stored monitor (not `changed_data`: fields with a
        # callable default compare against a hidden initial input a client may leave out).
        # The instance still holds the stored values here: Django copies the form onto it
        # after clean().
        payload = {
            name: cleaned[name]
            for name, field in MonitorInput().fields.items()
            if name in cleaned
            and not field.read_only
            and (adding or cleaned[name] != getattr(self.instance, name))
        }
        if not adding:
            payload.pop("kind", None)  # a monitor's kind never changes (the API says so too)
        elif not payload.get("slug"):
            payload.pop("slug", None)  # the service makes one from the name
        serializer = MonitorInput(
            data=payload, partial=not adding, context={"monitor": self.instance}
        )
        if serializer.is_valid():
            self.validated = dict(serializer.validated_data)
            return cleaned
        for field, detail in serializer.errors.items():
            if field == "config" and isinstance(detail, dict) and not self._raw(cleaned):
                self._config_errors(kind, detail)
                continue
            for line in _messages(detail, field):
                self.add_error(field if field in self.fields else None, line)
        return cleaned

    def _raw(self, cleaned: dict[str, Any]) -> bool:
        return bool(self.advanced and cleaned.get("raw_config") and "config" in self.fields)

    def _config_errors(self, kind: str, detail: dict) -> None:
        """Each config error under the field it is about (the assertions box, the URL...)."""
        for key, value in detail.items():
            name = field_name(kind, key)
            target = name if name in self.fields else None
            for line in _messages(value, key):
                self.add_error(target, line if target else f"{key}: {line}")
