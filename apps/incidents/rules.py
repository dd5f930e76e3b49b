"""The alert rules an organization gets without configuring anything, and how to read them.

An organization's AlertRule rows override these defaults kind by kind; a kind without a row
behaves exactly as its default, so a new organization is protected from its first check.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from apps.incidents.models import AlertRule, RuleKind, Severity


@dataclass(frozen=True)
class Rule:
    kind: str
    enabled: bool
    threshold: float | None
    window_seconds: int | None
    severity: str


DEFAULTS: dict[str, Rule] = {
    # A monitor crossed its own failure_threshold.
    RuleKind.SERVICE_DOWN: Rule(RuleKind.SERVICE_DOWN, True, None, None, Severity.ERROR),
    # The same for monitors marked critical (instead of service_down, not beside it).
    RuleKind.CRITICAL_SERVICE_DOWN: Rule(
        RuleKind.CRITICAL_SERVICE_DOWN, True, None, None, Severity.CRITICAL
    ),
    # N failures in a row before the monitor's own threshold calls it down (tolerant monitors).
    RuleKind.CONSECUTIVE_FAILURES: Rule(
        RuleKind.CONSECUTIVE_FAILURES, True, 3, None, Severity.WARNING
    ),
    # Response time above expected_response_time_ms x threshold.
    RuleKind.HIGH_RESPONSE_TIME: Rule(
        RuleKind.HIGH_RESPONSE_TIME, True, 2.0, None, Severity.WARNING
    ),
    # Uptime (from hourly rollups) below threshold % over the window.
    RuleKind.LOW_UPTIME: Rule(RuleKind.LOW_UPTIME, True, 95.0, 86_400, Severity.WARNING),
    # A certificate expiring within threshold days.
    RuleKind.CERTIFICATE_EXPIRY: Rule(
        RuleKind.CERTIFICATE_EXPIRY, True, 14, None, Severity.WARNING
    ),
    # Whether a recovery sends a notice (the resolved event of a down incident), and its severity.
    RuleKind.SERVICE_RECOVERY: Rule(RuleKind.SERVICE_RECOVERY, True, None, None, Severity.INFO),
    # More than threshold status changes within the window: one flapping notice.
    RuleKind.FLAPPING: Rule(RuleKind.FLAPPING, True, 5, 1800, Severity.WARNING),
    # The monitor burns its error budget 14.4x too fast over 1 h and 5 min (at this severity),
    # or 6x over 6 h and 30 min (warning): apps.incidents.slo.
    RuleKind.SLO_BURN: Rule(RuleKind.SLO_BURN, True, None, None, Severity.CRITICAL),
    # Off until the organization turns it on: a new error log signature of a source, or a
    # signature logging more than threshold x its hourly mean of the day before over the window
    # (and at least MIN_COUNT lines): apps.incidents.errorsig.
    RuleKind.ERROR_SIGNATURE: Rule(RuleKind.ERROR_SIGNATURE, False, 10.0, 300, Severity.WARNING),
}

# What each kind's threshold means and the values it accepts (the API validates with these).
THRESHOLDS: dict[str, tuple[str, float, float] | None] = {
    RuleKind.SERVICE_DOWN: None,
    RuleKind.CRITICAL_SERVICE_DOWN: None,
    RuleKind.CONSECUTIVE_FAILURES: ("failures in a row", 1, 100),
    RuleKind.HIGH_RESPONSE_TIME: ("times the expected response time", 1, 100),
    RuleKind.LOW_UPTIME: ("uptime percentage", 1, 99.999),
    RuleKind.CERTIFICATE_EXPIRY: ("days before expiry", 1, 60),
    RuleKind.SERVICE_RECOVERY: None,
    RuleKind.FLAPPING: ("status changes per window", 2, 100),
    RuleKind.SLO_BURN: None,
    RuleKind.ERROR_SIGNATURE: ("times the signature's hourly mean over the day before", 2, 1000),
}
WINDOWS: dict[str, tuple[int, int] | None] = {
    RuleKind.LOW_UPTIME: (3600, 90 * 86_400),
    RuleKind.FLAPPING: (60, 86_400),
    # Per-minute counts are kept two hours; the rate window reads them.
    RuleKind.ERROR_SIGNATURE: (60, 3600),
}
# Certificates further from expiry than this can never match any organization's rule, so the
# hot path skips them without reading rules.
MAX_CERT_DAYS = THRESHOLDS[RuleKind.CERTIFICATE_EXPIRY][2]


def from_row(row: AlertRule) -> Rule:
    default = DEFAULTS[row.kind]
    return replace(
        default,
        enabled=row.enabled,
        threshold=row.threshold if row.threshold is not None else default.threshold,
        window_seconds=row.window_seconds
        if row.window_seconds is not None
        else default.window_seconds,
        severity=row.severity,
    )


class RuleSet:
    """An organization's effective rules."""

    def __init__(self, rows: list[AlertRule] | None = None) -> None:
        self._rules = dict(DEFAULTS)
        for row in rows or []:
            if row.kind in DEFAULTS:
                self._rules[row.kind] = from_row(row)

    def __getitem__(self, kind: str) -> Rule:
        return self._rules[kind]


def rules_for_orgs(org_ids: set) -> dict[object, RuleSet]:
    """{organization id: RuleSet} in one query."""
    rows: dict[object, list[AlertRule]] = {org_id: [] for org_id in org_ids}
    for row in AlertRule.objects.filter(organization_id__in=list(org_ids)):
        rows[row.organization_id].append(row)
    return {org_id: RuleSet(r) for org_id, r in rows.items()}


def rules_for(org_id: object) -> RuleSet:
    return rules_for_orgs({org_id})[org_id]
