#!/usr/bin/env python
"""What the plan gate costs a request: entitlement checks, usage increments, rate limiting.

Runs against the database in DATABASE_URL (PostgreSQL is the point) in a kept test database
(`test_<name>`, migrated once, reused later), and the cache in CACHE_URL. Prints medians (and
p95) in microseconds and the queries each operation issues.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/healthorch_bench \\
    CACHE_URL=redis://127.0.0.1:6379/1 DEBUG=1 .venv/bin/python benchmarks/entitlements.py
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2000"))


def timed(fn, rounds: int = ROUNDS) -> tuple[float, float, int]:
    fn()  # warm: caches, prepared statements, connection
    queries: list[str] = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    # execute_wrapper, not CaptureQueriesContext: Django resets its query log at request start.
    with connection.execute_wrapper(count):
        fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95)], len(queries)


def main() -> None:
    setup_test_environment()
    connection.creation.create_test_db(keepdb=True, verbosity=0)
    from apps.core import api
    from apps.plans import services
    from apps.plans.metering import api_usage, check_rate
    from apps.plans.models import Limit, UsageMetric
    from apps.plans.selectors import _local, entitlements_for
    from apps.tenants.models import Organization
    from apps.tenants.services import api_key_create

    services.plans_ensure_defaults()
    org, _ = Organization.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    services.organization_change_plan(org=org, plan_code="enterprise", source="benchmark")
    org = Organization.objects.select_related("plan").get(pk=org.pk)
    secret = api_key_create(org=org, name="bench", scopes=["read", "write"]).secret
    cache.clear()

    print(
        f"database: {connection.vendor} {connection.settings_dict['NAME']}, "
        f"cache: {settings.CACHES['default']['BACKEND']}, rounds: {ROUNDS}"
    )
    rows = []
    rows.append(("entitlements_for (process cache hit)", *timed(lambda: entitlements_for(org))))
    rows.append(
        (
            "require_feature (cached)",
            *timed(lambda: services.require_feature(org=org, feature="sla_reports")),
        )
    )

    def shared_cache_hit():
        _local.clear()
        entitlements_for(org)

    rows.append(("entitlements_for (shared cache hit)", *timed(shared_cache_hit)))

    def cold():
        _local.clear()
        cache.delete(f"entitlements:org:{org.pk}")
        entitlements_for(org)

    rows.append(("entitlements_for (cache miss)", *timed(cold)))
    rows.append(
        (
            "usage_add (atomic upsert)",
            *timed(lambda: services.usage_add(org=org, metric=UsageMetric.CHECKS_EXECUTED)),
        )
    )

    def reserve_notification():
        services.reserve(org=org, limit=Limit.NOTIFICATIONS_PER_MONTH)

    rows.append(("reserve notifications (upsert)", *timed(reserve_notification)))

    capped, _ = Organization.objects.get_or_create(slug="bench-biz", defaults={"name": "Biz"})
    services.organization_change_plan(org=capped, plan_code="business", source="benchmark")
    capped = Organization.objects.select_related("plan").get(pk=capped.pk)

    def reserve_member():  # business plan: 50 members, so the lock and count really run
        with transaction.atomic():
            services.reserve(org=capped, limit=Limit.MEMBERS)

    rows.append(("reserve members (lock + count)", *timed(reserve_member)))
    rows.append(
        ("rate limit window increment", *timed(lambda: check_rate(ident="bench", per_minute=10**9)))
    )

    # Whole requests, with and without the plan gate (rate limit + metering + entitlements).
    client = Client(HTTP_X_API_KEY=secret)
    request = lambda: client.get("/api/v1/organization")  # noqa: E731
    with_gate = timed(request, ROUNDS // 2)
    original = api.enforce_api_plan
    api.enforce_api_plan = lambda tenancy: {}
    try:
        without_gate = timed(request, ROUNDS // 2)
    finally:
        api.enforce_api_plan = original
    api_usage.flush()

    print(f"\n{'operation':38} {'median us':>10} {'p95 us':>10} {'queries':>8}")
    for name, median, p95, queries in rows:
        print(f"{name:38} {median:10.1f} {p95:10.1f} {queries:8d}")
    print(
        f"{'GET /api/v1/organization, gate on':38} {with_gate[0]:10.1f} {with_gate[1]:10.1f}"
        f" {with_gate[2]:8d}"
    )
    print(
        f"{'GET /api/v1/organization, gate off':38} {without_gate[0]:10.1f}"
        f" {without_gate[1]:10.1f} {without_gate[2]:8d}"
    )
    print(
        f"\nplan gate adds {with_gate[0] - without_gate[0]:.1f} us median per request "
        f"({with_gate[0] / without_gate[0]:.3f}x)"
    )


if __name__ == "__main__":
    main()
