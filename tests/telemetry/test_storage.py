"""Writing log lines: what goes in comes back byte for byte, whatever the message holds, and a
batch streamed in chunks is stored and metered whole. Runs on both databases (PostgreSQL
writes by COPY text, where tabs, newlines and backslashes must be escaped; SQLite by INSERT)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from apps.core.errors import UpgradeRequired
from apps.plans.models import Limit
from apps.plans.services import limit_override_set
from apps.telemetry import services
from apps.telemetry.models import LogLine
from apps.telemetry.storage import COPY_CHUNK

pytestmark = pytest.mark.django_db
AT = datetime(2026, 11, 2, 3, 4, 5, 123456, tzinfo=UTC)

AWKWARD = [
    "tab\there",
    "two\nlines",
    "carriage\r\nreturn",
    "back\\slash and \\N and \\t",
    "\\.",
    "ünïcödé ✓ 日本",
    "quote \" and ' apostrophe",
]


def test_awkward_messages_and_attributes_come_back_unchanged(org):
    rows = [
        (AT, "api", "info", text, {"k\tey": text, "n": [1, None, True]}, "ab" * 16, "cd" * 8)
        for text in AWKWARD
    ]
    assert services.logs_store(org=org, rows=rows) == len(AWKWARD)
    stored = {line.message: line for line in LogLine.objects.filter(organization=org)}
    assert set(stored) == set(AWKWARD)
    for text in AWKWARD:
        line = stored[text]
        assert line.attributes == {"k\tey": text, "n": [1, None, True]}
        assert (line.ts, line.trace_id, line.span_id) == (AT, "ab" * 16, "cd" * 8)


def test_a_streamed_batch_larger_than_a_chunk_is_stored_and_counted_once(org, key_client):
    count = COPY_CHUNK * 2 + 7
    rows = (
        (AT + timedelta(seconds=i), "api", "info", f"line {i}", {}, "", "") for i in range(count)
    )
    assert services.logs_store(org=org, rows=rows) == count
    assert LogLine.objects.filter(organization=org).count() == count
    usage = key_client(org).get("/api/v1/usage").json()["usage"]["log_lines"]
    assert usage["used"] == count


def test_a_streamed_batch_over_the_limit_leaves_nothing(org):
    limit_override_set(org=org, limit=Limit.LOG_LINES_PER_MONTH, value=100, reason="test")
    rows = ((AT, "api", "info", f"line {i}", {}, "", "") for i in range(COPY_CHUNK + 1))
    with pytest.raises(UpgradeRequired):
        services.logs_store(org=org, rows=rows)
    assert not LogLine.objects.filter(organization=org).exists()
