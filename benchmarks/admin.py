#!/usr/bin/env python
"""The console with a platform's worth of rows: server time and queries per admin page.

Seeds (once; reused on later runs) 20 organizations with 10,000 monitors, 100,000 check
results, 24 hourly and 89 daily rollups for 1,000 of the monitors, 2,000 incidents with an
event each, 5,000 notifications and 10,000 audit entries; and for the first organization 30
days of one-minute metric samples of three metrics of one source (129,600 samples), a metric
monitor on one of them and 100,000 log lines. Then, for each page, as an operator
(and the monitors list as a tenant owner too): 3 warm-up requests, then `--rounds` timed
requests through Django's test client in this process (the whole server side: middleware,
view, queries, template; no network), and one more request counting its queries.
Prints median / p95 / max in ms and the query count per page.

    DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/healthorch_bench \\
    CACHE_URL=redis://127.0.0.1:6379/1 LOG_LEVEL=WARNING \\
    .venv/bin/python benchmarks/admin.py [--rounds 30] [--pages telemetry]

Runs in the kept test database `test_<name>` (use a database name of its own, as above: the
rows stay for later runs); on SQLite in `var/bench_admin.sqlite3`. ~1 minute (+~1 minute to
seed the first time).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

PREFIX = "bench-admin"
ORGS, MONITORS, RESULTS = 20, 10_000, 100_000
CHARTED, INCIDENTS, NOTIFICATIONS, AUDIT = 1_000, 2_000, 5_000, 10_000
TARGET_MS = 300.0
#: the telemetry pages' data: metric names of one source, 30 days of minute samples each
METRICS, SAMPLE_DAYS, LOG_LINES = ("latency_ms", "queue_depth", "rps"), 30, 100_000


def seed() -> None:
    from apps.alerts.models import Channel, Notification
    from apps.audit.models import AuditEntry
    from apps.incidents.models import Incident, IncidentEvent
    from apps.monitors.models import CheckResult, Monitor, MonitorSchedule, ResultRollup
    from apps.plans.services import plans_ensure_defaults
    from apps.tenants.models import Organization

    plans_ensure_defaults()
    if Monitor.objects.filter(organization__slug__startswith=PREFIX).count() >= MONITORS:
        return
    started = time.monotonic()
    print("seeding (once)...", flush=True)
    orgs = [
        Organization.objects.get_or_create(
            slug=f"{PREFIX}-{i}", defaults={"name": f"Bench {i}", "plan_id": "enterprise"}
        )[0]
        for i in range(ORGS)
    ]
    now = timezone.now()
    statuses = ["up"] * 90 + ["down"] * 5 + ["degraded"] * 3 + ["unknown"] * 2
    monitors = Monitor.objects.bulk_create(
        [
            Monitor(
                organization=orgs[i % ORGS],
                name=f"bench monitor {i}",
                slug=f"bench-{i}",
                kind="http",
                config={"url": f"http://127.0.0.1:9/{i}"},
                status=statuses[i % 100],
                status_changed_at=now - timedelta(minutes=i % 600),
                paused=i % 50 == 0,
            )
            for i in range(MONITORS)
        ],
        batch_size=1000,
    )
    MonitorSchedule.objects.bulk_create(
        [
            MonitorSchedule(
                monitor=m,
                lane="check",
                next_check_at=now + timedelta(seconds=i % 300),
                interval_seconds=300,
            )
            for i, m in enumerate(monitors)
        ],
        batch_size=1000,
    )
    per = RESULTS // MONITORS
    CheckResult.objects.bulk_create(
        (
            CheckResult(
                monitor=m,
                organization_id=m.organization_id,
                checked_at=now - timedelta(seconds=30 * k + i % 30),
                outcome="down" if m.status == "down" else "up",
                response_time_ms=20 + (i * 7 + k) % 200,
                status_code=200,
            )
            for i, m in enumerate(monitors)
            for k in range(per)
        ),
        batch_size=2000,
    )
    hour = now.replace(minute=0, second=0, microsecond=0)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    rollups = []
    for m in monitors[:CHARTED]:
        kw = {"monitor": m, "organization_id": m.organization_id}
        rollups += [
            ResultRollup(
                **kw,
                granularity="hour",
                bucket_start=hour - timedelta(hours=h),
                total=12,
                up=12,
                latency_count=12,
                latency_sum_ms=12 * (40 + h),
            )
            for h in range(24)
        ]
        rollups += [
            ResultRollup(
                **kw,
                granularity="day",
                bucket_start=day - timedelta(days=d),
                total=288,
                up=288 - (d % 7),
                down=d % 7,
            )
            for d in range(1, 90)
        ]
    ResultRollup.objects.bulk_create(rollups, batch_size=2000)
    down = [m for m in monitors if m.status in ("down", "degraded")]
    incidents = Incident.objects.bulk_create(
        [
            Incident(
                organization_id=down[i % len(down)].organization_id,
                monitor=down[i % len(down)],
                rule=f"bench_{i}",  # one open incident per (monitor, rule)
                title=f"bench incident {i}",
                severity=["critical", "error", "warning", "info"][i % 4],
                status=["triggered", "acknowledged", "resolved", "resolved"][i % 4],
                opened_at=now - timedelta(minutes=i),
                last_seen_at=now,
            )
            for i in range(INCIDENTS)
        ],
        batch_size=1000,
    )
    IncidentEvent.objects.bulk_create(
        [
            IncidentEvent(
                incident=x, organization_id=x.organization_id, kind="opened", at=x.opened_at
            )
            for x in incidents
        ],
        batch_size=1000,
    )
    channels = {
        o.pk: Channel.objects.create(organization=o, name="bench hook", kind="webhook", config={})
        for o in orgs
    }
    Notification.objects.bulk_create(
        [
            Notification(
                organization_id=incidents[i % INCIDENTS].organization_id,
                channel=channels[incidents[i % INCIDENTS].organization_id],
                incident=incidents[i % INCIDENTS],
                kind="opened",
                severity="critical",
                status=["sent", "sent", "sent", "failed", "dead"][i % 5],
                idempotency_key=f"{PREFIX}:{i}",
                attempts=1,
            )
            for i in range(NOTIFICATIONS)
        ],
        batch_size=1000,
    )
    AuditEntry.objects.bulk_create(
        [
            AuditEntry(
                organization=orgs[i % ORGS],
                actor_kind="system",
                actor_label="bench",
                action=["monitor.create", "monitor.update", "incident.acknowledge"][i % 3],
                object_type=["monitor", "incident"][i % 2],
                object_id=str(i),
                object_repr=f"bench {i}",
                at=now - timedelta(seconds=i),
            )
            for i in range(AUDIT)
        ],
        batch_size=1000,
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE")
    print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)


def seed_telemetry() -> None:
    """Samples, a metric monitor and log lines for the first organization (once)."""
    from apps.monitors.models import MetricSample, Monitor
    from apps.telemetry.models import LogLine
    from apps.tenants.models import Organization

    org = Organization.objects.get(slug=f"{PREFIX}-0")
    if LogLine.objects.filter(organization=org).exists():
        return
    started = time.monotonic()
    print("seeding telemetry (once)...", flush=True)
    now = timezone.now().replace(second=0, microsecond=0)
    minutes = SAMPLE_DAYS * 24 * 60
    for n, name in enumerate(METRICS):
        MetricSample.objects.bulk_create(
            (
                MetricSample(
                    organization=org,
                    source="bench-svc",
                    name=name,
                    value=float((i * 7 + n) % 100),
                    ts=now - timedelta(minutes=i),
                )
                for i in range(minutes)
            ),
            batch_size=5000,
        )
    Monitor.objects.create(
        organization=org,
        name="bench metric",
        slug="bench-metric",
        kind="metric",
        config={
            "source": "bench-svc",
            "metric": "latency_ms",
            "operator": ">",
            "threshold": 90.0,
            "for_seconds": 0,
        },
        status="up",
        status_changed_at=now,
    )
    levels = ["info"] * 7 + ["warn", "error", "debug"]
    LogLine.objects.bulk_create(
        (
            LogLine(
                organization=org,
                ts=now - timedelta(seconds=i * 2),
                source=["bench-svc", "web", "worker"][i % 3],
                level=levels[i % 10],
                message=f"request {i} {'timeout upstream' if i % 50 == 0 else 'served'} "
                f"in {i % 900} ms",
                attributes={"request": i, "path": f"/p/{i % 20}"},
            )
            for i in range(LOG_LINES)
        ),
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ANALYZE")
    print(f"seeded telemetry in {time.monotonic() - started:.0f} s", flush=True)


def clients() -> tuple[Client, Client]:
    from django.contrib.auth import get_user_model

    from apps.tenants.models import Membership, Organization, Role

    User = get_user_model()
    op, _ = User.objects.get_or_create(
        username=f"{PREFIX}-op", defaults={"is_staff": True, "is_superuser": True}
    )
    owner, _ = User.objects.get_or_create(username=f"{PREFIX}-owner")
    Membership.objects.get_or_create(
        organization=Organization.objects.get(slug=f"{PREFIX}-0"),
        user=owner,
        defaults={"role": Role.OWNER},
    )
    a, b = Client(), Client()
    a.force_login(op)
    b.force_login(owner)
    return a, b


def measure(client: Client, url: str, rounds: int) -> tuple[list[float], int]:
    for _ in range(3):
        assert client.get(url).status_code == 200, url
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, url
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    return times, len(queries)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument(
        "--pages", default="", help="only the pages whose URL contains this (e.g. telemetry)"
    )
    args = parser.parse_args()
    setup_test_environment()
    if connection.vendor == "sqlite":
        # Its own file: the tests' kept SQLite database must not inherit 100,000 rows.
        connection.settings_dict["TEST"]["NAME"] = str(
            Path(connection.settings_dict["NAME"]).with_name("bench_admin.sqlite3")
        )
    if bench_db := os.environ.get("BENCH_TEST_DATABASE"):
        connection.settings_dict["TEST"]["NAME"] = bench_db  # a kept database of one's own
    connection.creation.create_test_db(keepdb=True, verbosity=0)
    seed()
    seed_telemetry()
    operator, owner = clients()
    from apps.incidents.models import Incident
    from apps.monitors.models import Monitor

    own = {"organization__slug": f"{PREFIX}-0"}
    incident = Incident.objects.order_by("pk").values_list("pk", flat=True)[0]
    monitor = Monitor.objects.filter(**own).order_by("pk").values_list("pk", flat=True)[0]
    metric_monitor = Monitor.objects.get(slug="bench-metric").pk
    from apps.tenants.models import Organization

    org = Organization.objects.get(slug=f"{PREFIX}-0").pk
    logs = f"/admin/telemetry/{org}/logs/"
    from apps.console.telemetry import encode_cursor
    from apps.telemetry.models import LogLine

    middle = encode_cursor(LogLine.objects.filter(organization_id=org)[LOG_LINES // 2])
    pages = [
        ("operator", operator, "/admin/"),
        ("operator", operator, "/admin/monitors/monitor/"),
        ("operator", operator, "/admin/monitors/monitor/?status__exact=down"),
        ("operator", operator, "/admin/monitors/monitor/?q=monitor+99"),
        ("operator", operator, "/admin/monitors/checkresult/"),
        ("operator", operator, "/admin/monitors/checkresult/?p=500"),
        ("operator", operator, "/admin/monitors/resultrollup/"),
        ("operator", operator, "/admin/incidents/incident/"),
        ("operator", operator, "/admin/incidents/incident/?status__exact=triggered"),
        ("operator", operator, "/admin/incidents/incidentevent/"),
        ("operator", operator, "/admin/alerts/notification/"),
        ("operator", operator, "/admin/alerts/notification/?status__exact=dead"),
        ("operator", operator, "/admin/audit/auditentry/"),
        ("owner", owner, "/admin/"),
        ("owner", owner, "/admin/monitors/monitor/"),
        ("owner", owner, "/admin/monitors/checkresult/"),
        ("operator", operator, "/admin/dashboard/live/"),
        ("owner", owner, "/admin/dashboard/live/"),
        ("operator", operator, f"/admin/incidents/incident/{incident}/change/"),
        ("owner", owner, f"/admin/monitors/monitor/{monitor}/change/"),
        ("owner", owner, "/admin/monitors/monitor/add/"),
        ("owner", owner, "/admin/billing/"),
        ("owner", owner, f"/admin/monitors/monitor/{monitor}/change/?range=30d"),
        ("owner", owner, f"/admin/monitors/monitor/{metric_monitor}/change/?range=30d"),
        ("owner", owner, "/admin/telemetry/sources/"),
        ("owner", owner, f"/admin/telemetry/{org}/sources/bench-svc/?range=1h"),
        ("owner", owner, f"/admin/telemetry/{org}/sources/bench-svc/?range=24h"),
        ("owner", owner, f"/admin/telemetry/{org}/sources/bench-svc/?range=30d"),
        ("operator", operator, f"/admin/telemetry/{org}/sources/bench-svc/?range=30d"),
        ("owner", owner, logs),
        ("owner", owner, f"{logs}?source=web&level=error"),
        ("owner", owner, f"{logs}?q=timeout+upstream"),
        ("owner", owner, f"{logs}?older={middle}"),
    ]
    pages = [p for p in pages if args.pages in p[2]]
    print(
        f"{connection.vendor}, {MONITORS:,} monitors, {RESULTS:,} results, "
        f"{args.rounds} rounds per page; target < {TARGET_MS:.0f} ms"
    )
    print(f"{'who':8} {'page':58} {'median':>7} {'p95':>7} {'max':>7} {'queries':>7}")
    worst = 0.0
    for who, client, url in pages:
        times, queries = measure(client, url, args.rounds)
        times.sort()
        p95 = times[max(0, round(0.95 * len(times)) - 1)]
        worst = max(worst, p95)
        print(
            f"{who:8} {url.replace(str(org), '<org>'):58} {statistics.median(times):7.1f} {p95:7.1f} {times[-1]:7.1f} "
            f"{queries:7d}"
        )
    print(f"worst p95: {worst:.1f} ms ({'met' if worst < TARGET_MS else 'NOT met'})")


if __name__ == "__main__":
    main()
