"""Log lines an organization's services send (OTLP or our JSON), append-only.

Metric samples stay in `monitors.MetricSample` (metric monitors read them); this app adds the
ways in (OTLP) and the reads (series, sources). Full-text search on `message` is a generated
`tsvector` column with a GIN index on PostgreSQL and an FTS5 table on SQLite, both made by
this app's migration 0001 outside the model (see apps.telemetry.search).
"""

from __future__ import annotations

from django.db import models

from apps.core.models import TenantQuerySet, denormalised_organization


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
    organization = denormalised_organization()
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


# --- Error signatures (apps.telemetry.mining; docs/decisions/0026) ----------------------------


class ErrorMiner(models.Model):
    """Where mining stands for one organization: the last log line id it read and the drain3
    miner's state (its clusters, compressed JSON). Written in the transaction that stores the
    signatures the state produced, so state, cursor and counts never disagree. The row with no
    organization holds the discovery watermark: the highest line id every organization's
    backlog was looked for up to."""

    id = models.BigAutoField(primary_key=True)
    organization = models.OneToOneField(
        "tenants.Organization", on_delete=models.CASCADE, related_name="+", null=True
    )
    cursor = models.BigIntegerField(default=0)
    # True while error lines past `cursor` wait (a run stopped at its batch bound).
    backlog = models.BooleanField(default=False)
    state = models.BinaryField(default=b"")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"miner of {self.organization_id} at {self.cursor}"


class ErrorSignature(models.Model):
    """One kind of error line of one source: the template drain3 mined (numbers, ids, UUIDs
    and addresses masked), with when it was first and last seen and how many lines it had."""

    id = models.BigAutoField(primary_key=True)
    organization = denormalised_organization()
    source = models.CharField(max_length=64)
    # The miner's cluster (per organization); the template of a cluster may widen later.
    cluster_id = models.IntegerField()
    template = models.TextField()
    # Stable public name: a hash of the source and the template as first mined.
    hash = models.CharField(max_length=16)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    total = models.BigIntegerField(default=0)
    # When mining made the row (not the line's time): what "new" alerts look at.
    created_at = models.DateTimeField()

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-last_seen", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "source", "cluster_id"], name="error_signature_cluster"
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "hash"], name="error_signature_hash"),
            models.Index(fields=["organization", "created_at"], name="error_signature_created"),
        ]

    def __str__(self) -> str:
        return f"{self.source}: {self.template[:80]}"


class SignatureCount(models.Model):
    """Lines of a signature per time bucket (by the line's time): the same table at two grains,
    written alike by apps.telemetry.mining.counts_add. The organization is denormalised so the
    reads of one organization's counts never join."""

    id = models.BigAutoField(primary_key=True)
    signature = models.ForeignKey(
        ErrorSignature, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    organization = denormalised_organization()
    count = models.BigIntegerField(default=0)

    objects = TenantQuerySet.as_manager()

    class Meta:
        abstract = True


class ErrorSignatureHour(SignatureCount):
    """Lines of a signature per hour, for the report."""

    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["signature", "hour"], name="error_signature_hour"),
        ]
        indexes = [models.Index(fields=["organization", "hour"], name="error_hour_org")]

    def __str__(self) -> str:
        return f"{self.signature_id} {self.hour:%Y-%m-%d %H}: {self.count}"


class ErrorSignatureMinute(SignatureCount):
    """Lines of a signature per minute, kept for two hours: the short window of the
    error_signature rule (apps.incidents.errorsig) reads these."""

    minute = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["signature", "minute"], name="error_signature_minute"),
        ]
        indexes = [models.Index(fields=["minute"], name="error_minute_time")]

    def __str__(self) -> str:
        return f"{self.signature_id} {self.minute:%Y-%m-%d %H:%M}: {self.count}"
