#!/usr/bin/env python
"""SLA reports: a monthly report of 200 one-minute monitors, and the rollup job's throughput.

Issue 7's figures:

1. **report**: one organization (Business plan) with 200 monitors checked every minute for
   the 30 days of November 2026 = 8,640,000 results. Those results are represented by what
   the report reads, their rollups, generated directly: 144,000 hourly rows (60 results each,
   a 60-sample latency histogram, some down minutes, a maintenance hour) merged into 6,000
   daily rows by the real `rollup_day`; plus incidents and status changes. Then
   `GET /api/v1/reports/sla?period=monthly&start=2026-11` through Django's full request path
   (token auth, tenancy gate, plan gate, JSON rendering), 7 times for JSON and 5 for PDF.
   Bars: JSON < 1 s, PDF < 5 s.
2. **rollup throughput**: real raw results for a sample, 24 hours x 200 monitors x 60 =
   288,000 rows written with COPY (with a maintenance window and dependencies so the
   accounting path runs), then the real `rollup_hour` per hour, timed: raw rows per second.

PostgreSQL only (COPY). The database named by DATABASE_URL is migrated; its `bench-sla`
organization is deleted and recreated on every run: never point it at data you keep.

    DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/healthorch_bench_reports \\
    CACHE_URL=redis://127.0.0.1:6379/7 LOG_LEVEL=WARNING .venv/bin/python benchmarks/reports.py
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

SLUG = "bench-sla"
MONTH = datetime(2026, 11, 1, tzinfo=UTC)
DAYS = 30
SAMPLE_DAY = datetime(2026, 10, 20, tzinfo=UTC)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def setup(monitors: int):
    from django.contrib.auth import get_user_model

    from apps.monitors.models import Monitor
    from apps.plans.services import organization_change_plan
    from apps.tenants import services as tenant_services
    from apps.tenants.models import Membership, Organization, Role

    old = Organization.objects.filter(slug=SLUG).first()
    if old is not None:
        with connection.cursor() as cur:
            for table in ("monitors_checkresult", "monitors_resultrollup", "monitors_errorrollup"):
                cur.execute(f"DELETE FROM {table} WHERE organization_id = %s", [old.pk])  # noqa: S608
        old.delete()
    org = Organization.objects.create(name="Bench SLA", slug=SLUG)
    organization_change_plan(org=org, plan_code="business", source="benchmark")
    org.refresh_from_db()
    user, _ = get_user_model().objects.get_or_create(
        username="bench-sla@example.test", defaults={"email": "bench-sla@example.test"}
    )
    Membership.objects.create(organization=org, user=user, role=Role.OWNER)
    rows = [
        Monitor(
            organization=org,
            name=f"service {i:03d}",
            slug=f"service-{i:03d}",
            kind="http",
            config={"url": f"http://127.0.0.1:9/{i}"},
            interval_seconds=60,
            tags=[f"group-{i % 10}"],
            critical=i % 7 == 0,
        )
        for i in range(monitors)
    ]
    Monitor.objects.bulk_create(rows)
    token = tenant_services.user_token(user=user)
    return org, list(Monitor.objects.filter(organization=org).order_by("slug")), token


def reuse():
    from apps.tenants import services as tenant_services
    from apps.tenants.models import Membership, Organization

    org = Organization.objects.get(slug=SLUG)
    owner = Membership.objects.filter(organization=org).select_related("user").first().user
    return org, tenant_services.user_token(user=owner)


def generate_rollups(org, monitors) -> float:
    """Hourly rollups standing for 60 one-minute results each, then the real daily merge."""
    from apps.incidents.models import Incident, StatusChange
    from apps.monitors import rollups
    from apps.monitors.models import Granularity, ResultRollup

    rng = random.Random(7)
    started = time.perf_counter()
    batch = []
    incidents, changes = [], []
    for mi, m in enumerate(monitors):
        mu = 3.5 + (mi % 20) * 0.08
        for h in range(DAYS * 24):
            at = MONTH + timedelta(hours=h)
            # Most hours clean; a bad hour now and then (1-30 minutes down); one maintenance
            # hour per monitor (hour 100), counted apart by the accounting fields.
            down = rng.randint(1, 30) if rng.random() < 0.004 else 0
            lat = [rng.lognormvariate(mu, 0.45) for _ in range(60 - down)]
            hist: dict[str, int] = {}
            for ms in lat:
                k = str(rollups.bucket_of(ms))
                hist[k] = hist.get(k, 0) + 1
            maint = h == 100
            batch.append(
                ResultRollup(
                    monitor_id=m.pk,
                    organization_id=org.pk,
                    granularity=Granularity.HOUR,
                    bucket_start=at,
                    total=60,
                    up=60 - down,
                    down=down,
                    latency_count=len(lat),
                    latency_sum_ms=sum(lat),
                    latency_min_ms=min(lat) if lat else None,
                    latency_max_ms=max(lat) if lat else None,
                    histogram=hist,
                    maint_up=60 - down if maint else 0,
                    maint_down=down if maint else 0,
                    maintenance_seconds=3600.0 if maint else 0.0,
                )
            )
            if down and not maint:
                opened = at + timedelta(minutes=5)
                incidents.append(
                    Incident(
                        organization=org,
                        monitor=m,
                        rule="service_down",
                        title=f"{m.name} down",
                        severity="error",
                        status="resolved",
                        opened_at=opened,
                        last_seen_at=opened,
                        acknowledged_at=opened + timedelta(minutes=2) if down > 5 else None,
                        resolved_at=opened + timedelta(minutes=down),
                    )
                )
                changes += [
                    StatusChange(monitor=m, organization=org, old="up", new="down", at=opened),
                    StatusChange(
                        monitor=m,
                        organization=org,
                        old="down",
                        new="up",
                        at=opened + timedelta(minutes=down),
                    ),
                ]
        if len(batch) >= 20_000:
            ResultRollup.objects.bulk_create(batch, batch_size=2000)
            batch = []
    ResultRollup.objects.bulk_create(batch, batch_size=2000)
    Incident.objects.bulk_create(incidents, batch_size=2000)
    StatusChange.objects.bulk_create(changes, batch_size=2000)
    for d in range(DAYS):
        rollups.rollup_day(MONTH + timedelta(days=d))
    print(
        f"generated {len(monitors) * DAYS * 24:,} hourly rollups (= {len(monitors) * DAYS * 1440:,}"
        f" one-minute results), {DAYS} days merged, {len(incidents)} incidents, in "
        f"{time.perf_counter() - started:.1f} s"
    )
    return time.perf_counter() - started


def measure_report(token: str, fmt: str, runs: int) -> None:
    client = Client()
    path = f"/api/v1/reports/sla?period=monthly&start=2026-11&format={fmt}"
    headers = {"HTTP_AUTHORIZATION": f"Token {token}"}
    response = client.get(path, **headers)  # warm: imports, entitlements cache, plans
    assert response.status_code == 200, response.content[:300]
    times = []
    for _ in range(runs):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.get(path, **headers)
            times.append(time.perf_counter() - started)
        assert response.status_code == 200
    size = len(response.content)
    print(
        f"monthly SLA {fmt:>4}: median {statistics.median(times) * 1000:7.0f} ms, "
        f"p95 {_pct(times, 0.95) * 1000:7.0f} ms, min {min(times) * 1000:7.0f} ms "
        f"({runs} runs, {len(ctx.captured_queries)} queries, {size:,} bytes)"
    )
    if fmt == "json":
        body = json.loads(response.content)
        s = body["summary"]
        print(
            f"  figures: availability {s['availability_pct']} %, p95 {s['response_ms']['p95']} ms,"
            f" incidents {s['incidents']}, health {s['health_score']}, monitors {s['monitors']}"
        )
    if fmt == "pdf":
        out = ROOT / "var" / "bench_sla_report.pdf"
        out.parent.mkdir(exist_ok=True)
        out.write_bytes(response.content)
        print(f"  written to {out}")


def measure_rollup(org, monitors, hours: int) -> None:
    """COPY real raw results for `hours` hours, then time `rollup_hour` over them."""
    from apps.incidents.models import MaintenanceWindow, MonitorDependency, StatusChange

    rng = random.Random(3)
    MaintenanceWindow.objects.create(
        organization=org,
        name="bench window",
        recurrence="once",
        starts_at=SAMPLE_DAY + timedelta(hours=2),
        ends_at=SAMPLE_DAY + timedelta(hours=3, minutes=30),
        tags=["group-1"],
    )
    for child in monitors[1:20]:
        MonitorDependency.objects.create(organization=org, monitor=child, depends_on=monitors[0])
    StatusChange.objects.create(
        monitor=monitors[0], organization=org, old="up", new="down", at=SAMPLE_DAY
    )
    StatusChange.objects.create(
        monitor=monitors[0],
        organization=org,
        old="down",
        new="up",
        at=SAMPLE_DAY + timedelta(hours=1),
    )
    started = time.perf_counter()
    n = 0
    with (
        transaction.atomic(),
        connection.cursor() as cur,
        cur.connection.cursor().copy(
            "COPY monitors_checkresult (monitor_id, organization_id, checked_at, region, outcome,"
            " response_time_ms, status_code, error_class, error_message, timings,"
            " assertion_failures) FROM STDIN"
        ) as copy,
    ):
        for h in range(hours):
            base = SAMPLE_DAY + timedelta(hours=h)
            for m in monitors:
                for minute in range(60):
                    bad = rng.random() < 0.01
                    copy.write_row(
                        (
                            m.pk,
                            org.pk,
                            base + timedelta(minutes=minute, seconds=rng.random()),
                            "default",
                            "down" if bad else "up",
                            None if bad else rng.lognormvariate(4, 0.5),
                            None if bad else 200,
                            "timeout" if bad else "",
                            "timed out after 10 s" if bad else "",
                            "{}",
                            "[]",
                        )
                    )
                    n += 1
    print(f"raw sample: {n:,} results written with COPY in {time.perf_counter() - started:.1f} s")
    from apps.monitors import rollups

    per_hour = []
    for h in range(hours):
        t0 = time.perf_counter()
        rollups.rollup_hour(SAMPLE_DAY + timedelta(hours=h))
        per_hour.append(time.perf_counter() - t0)
    total = sum(per_hour)
    rows_per_hour = n / hours
    print(
        f"rollup_hour: {n:,} raw rows in {total:.2f} s = {n / total:,.0f} raw rows/s; per hour of "
        f"{rows_per_hour:,.0f} rows: median {statistics.median(per_hour) * 1000:.0f} ms, "
        f"p95 {_pct(per_hour, 0.95) * 1000:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--monitors", type=int, default=200)
    parser.add_argument("--json-runs", type=int, default=7)
    parser.add_argument("--pdf-runs", type=int, default=5)
    parser.add_argument("--raw-hours", type=int, default=24)
    parser.add_argument(
        "--reuse", action="store_true", help="measure the report on the data of the last run"
    )
    parser.add_argument("--timezone", default="UTC", help="the organization's report time zone")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("PostgreSQL only (COPY): set DATABASE_URL")
    call_command("migrate", verbosity=0)
    if args.reuse:
        org, token = reuse()
    else:
        org, monitors, token = setup(args.monitors)
        generate_rollups(org, monitors)
    with connection.cursor() as cur:
        cur.execute("ANALYZE monitors_resultrollup")
    from apps.reports.models import ReportSettings

    ReportSettings.objects.update_or_create(organization=org, defaults={"timezone": args.timezone})
    print(f"report time zone: {args.timezone}")
    measure_report(token, "json", args.json_runs)
    measure_report(token, "pdf", args.pdf_runs)
    if not args.reuse:
        measure_rollup(org, monitors, args.raw_hours)


if __name__ == "__main__":
    main()
