"""Stored JSON (a cause, an event's details, a check's result) shown to people: a small table of
labelled values instead of a JSON dump. Used by the console's object pages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe


def label(key: str) -> str:
    """`status_code` -> `status code`, `window_seconds` -> `window (s)`."""
    for suffix, unit in (("_seconds", " (s)"), ("_ms", " (ms)"), ("_pct", " (%)")):
        if key.endswith(suffix):
            return key[: -len(suffix)].replace("_", " ") + unit
    return key.replace("_", " ")


def value_text(value: Any) -> str:
    """A stored value as a short text: times in UTC, lists joined, nested objects inline."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.1f}".removesuffix(".0")
    if isinstance(value, str):
        when = parse_datetime(value) if len(value) >= 19 and value[4:5] == "-" else None
        if when is not None:
            return when.strftime("%Y-%m-%d %H:%M:%S UTC")
        return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, Mapping):
        return "; ".join(f"{label(str(k))}: {value_text(v)}" for k, v in value.items())
    if isinstance(value, Iterable):
        return ", ".join(value_text(v) for v in value)
    return str(value)


def facts_table(data: Mapping[str, Any] | None, *, skip: Iterable[str] = ()) -> SafeString:
    """Two columns, label and value, one row per key (in the stored order)."""
    skipped = set(skip)
    rows = [(label(str(k)), value_text(v)) for k, v in (data or {}).items() if k not in skipped]
    if not rows:
        return mark_safe("")
    return format_html(
        '<table class="console-facts"><tbody>{}</tbody></table>',
        format_html_join("", '<tr><th scope="row">{}</th><td>{}</td></tr>', rows),
    )
