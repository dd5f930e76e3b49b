#!/usr/bin/env python
"""Server time of a status page: one page with 50 monitors in 5 sections, 90 days of daily
rollups each (plus today's hourly ones), a few incidents with updates and a maintenance window.

Measures the whole Django request (middleware, view, template) through the test client, with
the page cache off (every request renders: the issue's < 100 ms target) and on (the rendered
page comes from the cache in CACHE_URL), for the HTML page and status.json. Prints median and
p95 in ms and the queries per request. Runs in a kept test database (`test_<name>`).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/healthorch_bench \\
    CACHE_URL=redis://127.0.0.1:6379/1 DEBUG=1 .venv/bin/python benchmarks/status_page.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import override_settings, setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "300"))
MONITORS = int(os.environ.get("BENCH_MONITORS", "50"))
SECTIONS = 5
DAYS = 90


def timed(fn, rounds: int = ROUNDS) -> tuple[float, float, float, int]:
    fn()  # warm: connection, templates, the cache when on
    queries: list[str] = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        fn()
    samples, cpu = [], []
    for _ in range(rounds):
        start, start_cpu = time.perf_counter_ns(), time.process_time_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1e6)
        cpu.append((time.process_time_ns() - start_cpu) / 1e6)
    samples.sort()
    return (
        statistics.median(samples),
        samples[int(len(samples) * 0.95)],
        statistics.median(cpu),
        len(queries),
    )


def build() -> str:
    from apps.incidents.models import Incident, MaintenanceWindow
    from apps.monitors import services as monitor_services
    from apps.monitors.models import Granularity, Monitor, ResultRollup
    from apps.plans.services import organization_change_plan, plans_ensure_defaults
    from apps.statuspages import services
    from apps.tenants.models import Organization

    plans_ensure_defaults()
    Organization.objects.filter(slug="bench-status").delete()
    org = Organization.objects.create(slug="bench-status", name="Bench status")
    organization_change_plan(org=org, plan_code="enterprise", source="benchmark")
    monitors = [
        monitor_services.monitor_create(
            org=org,
            data={
                "name": f"service {i:02d}",
                "kind": "tcp",
                "config": {"host": "127.0.0.1", "port": 9},
            },
        )
        for i in range(MONITORS)
    ]
    Monitor.objects.filter(organization=org).update(status="up")
    now = timezone.now()
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    rows = []
    for n, monitor in enumerate(monitors):
        for d in range(1, DAYS):
            down = 3 if (n + d) % 17 == 0 else 0
            rows.append(
                ResultRollup(
                    monitor=monitor,
                    organization=org,
                    granularity=Granularity.DAY,
                    bucket_start=today - timedelta(days=d),
                    total=1440,
                    up=1440 - down,
                    down=down,
                )
            )
        for h in range(now.hour):
            rows.append(
                ResultRollup(
                    monitor=monitor,
                    organization=org,
                    granularity=Granularity.HOUR,
                    bucket_start=today + timedelta(hours=h),
                    total=60,
                    up=60,
                )
            )
    ResultRollup.objects.bulk_create(rows, batch_size=2000)
    page = services.status_page_create(org=org, data={"name": "Bench", "slug": "bench-status"})
    per = MONITORS // SECTIONS
    for s in range(SECTIONS):
        services.section_create(
            org=org,
            data={
                "page": page.pk,
                "name": f"Section {s}",
                "position": s,
                "monitors": [{"monitor": m.pk} for m in monitors[s * per : (s + 1) * per]],
            },
        )
    for i in range(5):
        incident = Incident.objects.create(
            organization=org,
            monitor=monitors[i],
            rule="service_down",
            title=f"Incident {i}",
            severity="error",
            status="resolved" if i else "triggered",
            opened_at=now - timedelta(days=i, hours=2),
            last_seen_at=now,
            resolved_at=None if i == 0 else now - timedelta(days=i),
        )
        for status in ("investigating", "identified", "resolved")[: 3 if i else 2]:
            services.incident_update_post(
                incident=incident, status=status, message=f"{status} text", notify=False
            )
    window = MaintenanceWindow.objects.create(
        organization=org,
        name="Upgrade",
        starts_at=now + timedelta(days=1),
        ends_at=now + timedelta(days=1, hours=1),
    )
    window.monitors.add(monitors[0])
    print(f"{MONITORS} monitors in {SECTIONS} sections, {len(rows)} rollup rows, 5 incidents")
    return page.slug


def main() -> None:
    setup_test_environment()
    connection.creation.create_test_db(keepdb=True, verbosity=0)
    slug = build()
    print(
        f"database: {connection.vendor} {connection.settings_dict['NAME']}, "
        f"cache: {settings.CACHES['default']['BACKEND']}, rounds: {ROUNDS}"
    )
    client = Client()
    results = []
    for label, path in (
        ("page", f"/status/{slug}/"),
        ("status.json", f"/status/{slug}/status.json"),
    ):
        with override_settings(STATUS_PAGE_CACHE_SECONDS=0):
            results.append((f"{label}, cache off", *timed(lambda p=path: client.get(p))))
        cache.clear()
        with override_settings(STATUS_PAGE_CACHE_SECONDS=30):
            results.append((f"{label}, cache on", *timed(lambda p=path: client.get(p))))
    size = len(client.get(f"/status/{slug}/").content)
    print(f"\n{'request':24} {'median ms':>10} {'p95 ms':>10} {'cpu ms':>8} {'queries':>8}")
    for name, median, p95, cpu, queries in results:
        print(f"{name:24} {median:10.2f} {p95:10.2f} {cpu:8.2f} {queries:8d}")
    # cpu ms: this process's CPU time per request (median), which other processes' load on
    # the shared cores does not inflate; the database's own time is in the wall figures only.
    print(f"\nHTML size: {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
