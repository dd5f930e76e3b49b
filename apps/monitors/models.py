"""Monitors, their check results, heartbeat pings and ingested metric samples."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from apps.core import crypto
from apps.core.models import TenantModel, TenantQuerySet, denormalised_organization

# The values of CheckResult.outcome and error_class, defined with the framework-free checkers and
# re-exported here for the apps that read results.
from apps.monitors.checkers.base import ErrorClass as ErrorClass
from apps.monitors.checkers.base import Outcome as Outcome


class MonitorKind(models.TextChoices):
    HTTP = "http", "HTTP(S)"
    TCP = "tcp", "TCP port"
    TLS = "tls", "TLS certificate"
    DNS = "dns", "DNS record"
    POSTGRES = "postgres", "PostgreSQL"
    REDIS = "redis", "Redis"
    SMTP = "smtp", "SMTP mail server"
    ICMP = "icmp", "ICMP ping"
    GRPC = "grpc", "gRPC health"
    KUBERNETES = "kubernetes", "Kubernetes"
    HEARTBEAT = "heartbeat", "Heartbeat (cron job)"
    METRIC = "metric", "Metric threshold"


# Kinds the scheduler runs; heartbeat and metric monitors are evaluated by sweeps instead.
ACTIVE_KINDS = [k for k in MonitorKind if k not in (MonitorKind.HEARTBEAT, MonitorKind.METRIC)]


class MonitorStatus(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    UP = "up", "Up"
    DEGRADED = "degraded", "Degraded"
    DOWN = "down", "Down"
    PAUSED = "paused", "Paused"
    MAINTENANCE = "maintenance", "Maintenance"


def _default_regions() -> list[str]:
    return ["default"]


class MonitorQuerySet(TenantQuerySet):
    def active(self):
        return self.filter(paused=False)


# How a monitor is checked, in the order shown: what the API returns after the identity and
# config, and what configuration as code exports.
CHECK_SETTINGS = (
    "interval_seconds",
    "timeout_seconds",
    "failure_threshold",
    "recovery_threshold",
    "regions",
    "quorum",
    "tags",
    "critical",
    "expected_response_time_ms",
    "slo_target_pct",
    "slo_window_days",
    "paused",
)


class Monitor(TenantModel):
    # No index of its own: (organization, status) and (organization, slug) lead with it.
    organization = models.ForeignKey(
        "tenants.Organization", on_delete=models.CASCADE, related_name="monitors", db_index=False
    )
    name = models.CharField(max_length=200)
    # Stable key for configuration as code (export/apply); unique per organization (that
    # constraint's index serves lookups, so no separate slug index).
    slug = models.SlugField(max_length=100, db_index=False)
    kind = models.CharField(max_length=16, choices=MonitorKind.choices)
    config = models.JSONField(default=dict, blank=True)
    # A secret part of the config (a DSN password), Fernet-encrypted; never returned by the API.
    secret = models.TextField(blank=True, default="")

    interval_seconds = models.PositiveIntegerField(default=300)
    timeout_seconds = models.FloatField(default=10)
    failure_threshold = models.PositiveSmallIntegerField(default=2)
    recovery_threshold = models.PositiveSmallIntegerField(default=1)
    regions = models.JSONField(default=_default_regions)
    quorum = models.PositiveSmallIntegerField(default=1)
    tags = models.JSONField(default=list, blank=True)
    critical = models.BooleanField(default=False)
    expected_response_time_ms = models.PositiveIntegerField(null=True, blank=True)
    # The availability objective the slo_burn rule guards (apps.monitors.slo): a percentage of
    # decisive checks that must pass over a rolling window of slo_window_days. Null: the
    # plan's availability target.
    slo_target_pct = models.DecimalField(max_digits=6, decimal_places=3, null=True, blank=True)
    slo_window_days = models.PositiveSmallIntegerField(
        default=30, choices=[(28, "28 days"), (30, "30 days")]
    )

    paused = models.BooleanField(default=False)
    paused_reason = models.CharField(max_length=255, blank=True)
    status = models.CharField(
        max_length=16, choices=MonitorStatus.choices, default=MonitorStatus.UNKNOWN
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    consecutive_successes = models.PositiveIntegerField(default=0)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_up_at = models.DateTimeField(null=True, blank=True)
    # The next check or heartbeat deadline lives in MonitorSchedule (the `next_check_at`
    # property below), so the dispatcher's hot UPDATE never rewrites this wide row.

    # Heartbeat monitors: the ping URL's secret (unique where set: see Meta) and the schedule.
    ping_token = models.UUIDField(default=None, null=True, blank=True)
    last_ping_at = models.DateTimeField(null=True, blank=True)
    last_start_at = models.DateTimeField(null=True, blank=True)
    # The ping rate limit's fixed one-minute window, counted in the ping's own statement
    # (apps.monitors.pings) instead of a separate Redis round trip.
    ping_window_at = models.DateTimeField(null=True, blank=True, editable=False)
    ping_window_count = models.PositiveIntegerField(default=0, editable=False)

    objects = MonitorQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="monitor_slug_per_org"),
            # Only heartbeats have a token: the other rows stay out of the index.
            models.UniqueConstraint(
                fields=["ping_token"],
                condition=Q(ping_token__isnull=False),
                name="monitor_ping_token",
            ),
            models.CheckConstraint(condition=Q(quorum__gte=1), name="monitor_quorum_positive"),
            models.CheckConstraint(
                condition=Q(failure_threshold__gte=1) & Q(recovery_threshold__gte=1),
                name="monitor_thresholds_positive",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "status"], name="monitor_org_status"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def next_check_at(self):
        """When the dispatcher runs it next, or a heartbeat's deadline; None when nothing is
        pending (paused, or a heartbeat before its first ping). Read-only: the schedule is
        written by apps.monitors.schedule, the dispatcher and the ping path."""
        try:
            return self.schedule.next_check_at
        except MonitorSchedule.DoesNotExist:
            return None


crypto.stored_encrypted(Monitor, "secret")


class ScheduleLane(models.TextChoices):
    CHECK = "check", "Check run by the dispatcher"
    HEARTBEAT = "heartbeat", "Heartbeat deadline watched by the sweep"


class MonitorSchedule(models.Model):
    """What is pending for a monitor and when: its next check, or a heartbeat's deadline.

    Kept apart from the wide monitor row on purpose. The dispatcher advances thousands of
    these per tick; updating `monitors_monitor` itself copied each row's config and inserted
    into every one of its indexes (benchmarks/dispatch.py: 134 ms for 5,000 claims). Here a
    claim rewrites a narrow row with two small indexes. A row exists only while something is
    pending: pausing a monitor deletes it, the heartbeat sweep deletes the deadlines it acted on.
    """

    SYNCED_FIELDS = ("interval_seconds", "regions")

    monitor = models.OneToOneField(
        Monitor, on_delete=models.CASCADE, primary_key=True, related_name="schedule"
    )
    lane = models.CharField(max_length=16, choices=ScheduleLane.choices)
    next_check_at = models.DateTimeField()
    # Copies of the monitor's, so a claim reads nothing but this table (joining 5,000 monitor
    # rows cost ~40 ms); apps.monitors.schedule keeps them in step with the monitor.
    interval_seconds = models.PositiveIntegerField()
    regions = models.JSONField(default=_default_regions)

    class Meta:
        indexes = [
            # The dispatcher's only access path, in next_check_at order: O(due).
            models.Index(fields=["next_check_at"], condition=Q(lane="check"), name="schedule_due"),
            # Heartbeat deadlines, for the overdue sweep.
            models.Index(
                fields=["next_check_at"],
                condition=Q(lane="heartbeat"),
                name="schedule_heartbeat_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.lane} at {self.next_check_at:%Y-%m-%d %H:%M:%S}"


class CheckResult(models.Model):
    """One check of one monitor in one region. Append-only; pruned by plan retention."""

    id = models.BigAutoField(primary_key=True)
    monitor = models.ForeignKey(
        Monitor, on_delete=models.CASCADE, related_name="results", db_index=False
    )
    organization = denormalised_organization()
    checked_at = models.DateTimeField()
    region = models.CharField(max_length=32, default="default")
    # For monitors checked from several regions: the due time all regions' checks share.
    round_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16)
    response_time_ms = models.FloatField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error_class = models.CharField(max_length=32, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    timings = models.JSONField(default=dict, blank=True)
    assertion_failures = models.JSONField(default=list, blank=True)
    cert_expires_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-checked_at"]
        indexes = [
            # History of one monitor newest first, and time-range scans for rollups/pruning.
            models.Index(fields=["monitor", "checked_at"], name="result_monitor_time"),
            models.Index(fields=["organization", "checked_at"], name="result_org_time"),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} at {self.checked_at:%Y-%m-%d %H:%M:%S}"


class PingKind(models.TextChoices):
    SUCCESS = "success", "Success"
    START = "start", "Start"
    FAIL = "fail", "Fail"
    EXIT = "exit", "Exit code"


class HeartbeatPing(models.Model):
    id = models.BigAutoField(primary_key=True)
    monitor = models.ForeignKey(
        Monitor, on_delete=models.CASCADE, related_name="pings", db_index=False
    )
    organization = denormalised_organization()
    kind = models.CharField(max_length=8, choices=PingKind.choices)
    exit_code = models.SmallIntegerField(null=True, blank=True)
    received_at = models.DateTimeField()
    duration_ms = models.FloatField(null=True, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["monitor", "received_at"], name="ping_monitor_time")]

    def __str__(self) -> str:
        return f"{self.kind} at {self.received_at:%Y-%m-%d %H:%M:%S}"


class MetricSample(models.Model):
    id = models.BigAutoField(primary_key=True)
    organization = denormalised_organization()
    source = models.CharField(max_length=64)
    name = models.CharField(max_length=64)
    value = models.FloatField()
    ts = models.DateTimeField()

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-ts"]
        indexes = [
            models.Index(fields=["organization", "source", "name", "ts"], name="sample_series"),
        ]

    def __str__(self) -> str:
        return f"{self.source}/{self.name}={self.value:g}"


class Granularity(models.TextChoices):
    HOUR = "hour", "Hour"
    DAY = "day", "Day"


class ResultRollup(models.Model):
    """Results of one monitor over one hour or day: counts and a mergeable latency histogram.

    Reports and uptime read these, never raw results. The histogram (see apps.monitors.rollups)
    merges across hours by adding counts, so percentiles over any range stay within its
    documented error bound.
    """

    id = models.BigAutoField(primary_key=True)
    monitor = models.ForeignKey(
        Monitor, on_delete=models.CASCADE, related_name="rollups", db_index=False
    )
    organization = denormalised_organization()
    granularity = models.CharField(max_length=4, choices=Granularity.choices)
    bucket_start = models.DateTimeField()
    total = models.PositiveIntegerField(default=0)
    up = models.PositiveIntegerField(default=0)
    degraded = models.PositiveIntegerField(default=0)
    down = models.PositiveIntegerField(default=0)
    inconclusive = models.PositiveIntegerField(default=0)
    latency_count = models.PositiveIntegerField(default=0)
    latency_sum_ms = models.FloatField(default=0)
    latency_min_ms = models.FloatField(null=True, blank=True)
    latency_max_ms = models.FloatField(null=True, blank=True)
    p50_ms = models.FloatField(null=True, blank=True)
    p95_ms = models.FloatField(null=True, blank=True)
    p99_ms = models.FloatField(null=True, blank=True)
    histogram = models.JSONField(default=dict)
    # SLA accounting decided from each result's moment (apps.monitors.accounting): results
    # taken while a maintenance window covered the monitor, by outcome; down results (outside
    # maintenance) while a parent dependency was down; seconds of the bucket in maintenance.
    maint_up = models.PositiveIntegerField(default=0)
    maint_degraded = models.PositiveIntegerField(default=0)
    maint_down = models.PositiveIntegerField(default=0)
    maint_inconclusive = models.PositiveIntegerField(default=0)
    dependency_down = models.PositiveIntegerField(default=0)
    maintenance_seconds = models.FloatField(default=0)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-bucket_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["monitor", "granularity", "bucket_start"], name="rollup_one_per_bucket"
            )
        ]
        indexes = [
            models.Index(
                fields=["organization", "granularity", "bucket_start"], name="rollup_org_time"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.granularity} {self.bucket_start:%Y-%m-%d %H:00}"

    @property
    def avg_ms(self) -> float | None:
        return self.latency_sum_ms / self.latency_count if self.latency_count else None


class ErrorRollup(models.Model):
    """Failed results of one monitor in one hour, grouped by error class and message, so the
    error analysis over 90 days reads these rows instead of millions of raw results."""

    id = models.BigAutoField(primary_key=True)
    monitor = models.ForeignKey(
        Monitor, on_delete=models.CASCADE, related_name="error_rollups", db_index=False
    )
    organization = denormalised_organization()
    bucket_start = models.DateTimeField()
    outcome = models.CharField(max_length=16)
    error_class = models.CharField(max_length=32, blank=True)
    message = models.CharField(max_length=200, blank=True)
    count = models.PositiveIntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["-bucket_start"]
        indexes = [
            models.Index(fields=["organization", "bucket_start"], name="error_rollup_org_time"),
            models.Index(fields=["monitor", "bucket_start"], name="error_rollup_monitor_time"),
            # The rollup job replaces one hour's rows of every organization at once.
            models.Index(fields=["bucket_start"], name="error_rollup_time"),
        ]

    def __str__(self) -> str:
        return f"{self.error_class or self.outcome}: {self.message[:40]} x{self.count}"
