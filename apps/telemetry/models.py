"""Log lines an organization's services send (OTLP or our JSON), append-only.

Metric samples stay in `monitors.MetricSample` (metric monitors read them); this app adds the
ways in (OTLP) and the reads (series, sources). Full-text search on `message` is a generated
`tsvector` column with a GIN index on PostgreSQL and an FTS5 table on SQLite, both made by
this app's migration 0001 outside the model (see apps.telemetry.search).
"""

from __future__ import annotations

from django.db import models

from apps.core.models import TenantQuerySet


class Level(models.TextChoices):
    # The six severity ranges of OpenTelemetry's SeverityNumber (1-4 trace ... 21-24 fatal).
    TRACE = "trace", "Trace"
    DEBUG = "debug", "Debug"
    INFO = "info", "Info"
    WARN = "warn", "Warn"
    ERROR = "error", "Error"
    FATAL = "fatal", "Fatal"


class LogLine(models.Model):
    """One log record. Append-only; pruned by the plan's log retention."""

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    ts = models.DateTimeField()
    source = models.CharField(max_length=64)
    level = models.CharField(max_length=8, choices=Level.choices)
    message = models.TextField()
    attributes = models.JSONField(default=dict, blank=True)
    trace_id = models.CharField(max_length=32, blank=True, default="")
    span_id = models.CharField(max_length=16, blank=True, default="")

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-ts", "-id"]
        indexes = [
            # Each read is one organization, newest first, narrowed by source or level; `id`
            # last so the list's (ts, id) cursor order is read straight off the index.
            models.Index(fields=["organization", "source", "ts", "id"], name="log_source_time"),
            models.Index(fields=["organization", "level", "ts", "id"], name="log_level_time"),
            models.Index(fields=["organization", "ts", "id"], name="log_time"),
        ]

    def __str__(self) -> str:
        return f"{self.ts:%Y-%m-%d %H:%M:%S} {self.source} {self.level}: {self.message[:80]}"
