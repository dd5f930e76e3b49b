"""The set-based hourly rollup computes what folding each result in Python computed.

`rollups.rollup_hour` runs two statements in the database (apps.monitors.rollup_sql);
`rollups.rollup_hour_by_rows` is the row-by-row fold it replaced. The same hour of mixed
results (several monitors, every outcome, errors, latencies around bucket edges, a maintenance
window over part of the hour) rolled up both ways must give the same rows.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from apps.incidents.models import MaintenanceWindow, Recurrence
from apps.monitors import rollups, services
from apps.monitors.models import CheckResult, ErrorRollup, Granularity, ResultRollup

pytestmark = pytest.mark.django_db
HOUR = datetime(2026, 6, 1, 10, tzinfo=UTC)
FIELDS = (
    "total",
    "up",
    "degraded",
    "down",
    "inconclusive",
    "latency_count",
    "latency_min_ms",
    "latency_max_ms",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "histogram",
    "maint_up",
    "maint_degraded",
    "maint_down",
    "maint_inconclusive",
    "dependency_down",
    "maintenance_seconds",
)


def _monitor(org, name, tags=()):
    return services.monitor_create(
        org=org,
        data={
            "name": name,
            "kind": "http",
            "config": {"url": "http://127.0.0.1:9/"},
            "tags": list(tags),
        },
    )


def _mixed_hour(monitors, seed=3):
    rng = random.Random(seed)
    rows = []
    for m in monitors:
        for i in range(600):
            outcome = rng.choice(["up"] * 7 + ["degraded", "down", "inconclusive"])
            ms = None
            if outcome in ("up", "degraded") and rng.random() > 0.05:
                # Some exactly on bucket edges (1.04 ** k) and some below 1 ms.
                ms = rng.choice([rng.uniform(0.1, 2000), 1.04 ** rng.randint(0, 150), 0.5])
            error_class = rng.choice(["", "timeout", "connect"]) if outcome != "up" else ""
            rows.append(
                CheckResult(
                    monitor=m,
                    organization_id=m.organization_id,
                    checked_at=HOUR + timedelta(seconds=i * 6, microseconds=rng.randint(0, 9)),
                    outcome=outcome,
                    response_time_ms=ms,
                    error_class=error_class,
                    error_message=rng.choice(["", "refused", "x" * 300]) if error_class else "",
                )
            )
    CheckResult.objects.bulk_create(rows)


def _rollups(org):
    return {
        r.monitor_id: {f: getattr(r, f) for f in FIELDS} | {"sum": round(r.latency_sum_ms, 3)}
        for r in ResultRollup.objects.filter(
            organization=org, granularity=Granularity.HOUR, bucket_start=HOUR
        )
    }


def _differences(got, want):
    """(monitor, field, got, want) wherever two sets of rollups differ; histograms by bucket."""
    out = []
    for monitor_id in sorted(set(got) | set(want), key=str):
        a, b = got.get(monitor_id, {}), want.get(monitor_id, {})
        for name in sorted(set(a) | set(b)):
            if name == "histogram" and a.get(name) != b.get(name):
                x, y = a.get(name) or {}, b.get(name) or {}
                out += [
                    (name, k, x.get(k), y.get(k)) for k in set(x) | set(y) if x.get(k) != y.get(k)
                ]
            elif a.get(name) != b.get(name):
                out.append((monitor_id, name, a.get(name), b.get(name)))
    return out


def _errors(org):
    return sorted(
        ErrorRollup.objects.filter(organization=org, bucket_start=HOUR).values_list(
            "monitor_id", "outcome", "error_class", "message", "count", "first_seen", "last_seen"
        )
    )


def test_set_based_rollup_equals_the_row_by_row_fold(org):
    monitors = [_monitor(org, "api", tags=["db"]), _monitor(org, "web"), _monitor(org, "dns")]
    _mixed_hour(monitors)
    MaintenanceWindow.objects.create(
        organization=org,
        name="db upgrade",
        recurrence=Recurrence.ONCE,
        starts_at=HOUR + timedelta(minutes=12),
        ends_at=HOUR + timedelta(minutes=41),
        tags=["db"],
    )
    assert rollups.rollup_hour_by_rows(HOUR) == 3
    by_rows, errors_by_rows = _rollups(org), _errors(org)
    ResultRollup.objects.filter(organization=org).delete()
    ErrorRollup.objects.filter(organization=org).delete()

    assert rollups.rollup_hour(HOUR + timedelta(minutes=5)) == 3
    assert _differences(_rollups(org), by_rows) == []
    assert _errors(org) == errors_by_rows
    in_window = by_rows[monitors[0].pk]
    assert in_window["maintenance_seconds"] == 29 * 60
    assert sum(in_window[k] for k in ("maint_up", "maint_degraded", "maint_down")) > 0
    assert by_rows[monitors[1].pk]["maint_up"] == 0


def test_a_rerun_overwrites_the_hour_instead_of_adding(org):
    monitor = _monitor(org, "api")
    _mixed_hour([monitor])
    rollups.rollup_hour(HOUR)
    first = _rollups(org)
    CheckResult.objects.filter(checked_at__gte=HOUR + timedelta(minutes=30)).delete()
    rollups.rollup_hour(HOUR)
    second = _rollups(org)[monitor.pk]
    assert second["total"] == 300 < first[monitor.pk]["total"]
    assert ResultRollup.objects.filter(monitor=monitor).count() == 1
    assert sum(c for m, *_, c, _f, _l in _errors(org) if m == monitor.pk) == sum(
        1
        for r in CheckResult.objects.filter(monitor=monitor)
        if r.outcome in ("down", "inconclusive") or r.error_class
    )
