#!/usr/bin/env python
"""What the incidents listeners add to recording a batch of check results.

N monitors (default 1,000) of one organization are recorded as one batch through
`engine.results_record`, the worker's own path, in four steps: healthy, all going down
(N incidents open), failing again (N collapsed `failed_again` updates), recovering (N
resolved). Each step runs with the incidents listeners and, on a second set of monitors,
without them; the difference is the incidents' cost. Prints seconds and statements.

Runs in a kept test database (`test_<name>`, migrated once, reused later):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/healthorch_bench \\
    DEBUG=1 .venv/bin/python benchmarks/incidents.py [N]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

STEPS = ("healthy", "down", "again", "recover")


def run(org, n: int, label: str) -> dict[str, tuple[float, int]]:
    from apps.monitors import engine, services
    from apps.monitors.checkers.base import CheckOutcome, ErrorClass, Outcome
    from apps.monitors.models import Monitor

    Monitor.objects.filter(organization=org).delete()
    for i in range(n):
        services.monitor_create(
            org=org,
            data={
                "name": f"{label}-{i}",
                "kind": "tcp",
                "config": {"host": "127.0.0.1", "port": 9},
                "failure_threshold": 1,
            },
        )
    up = lambda: CheckOutcome(Outcome.UP, response_time_ms=20)  # noqa: E731
    down = lambda: CheckOutcome(Outcome.DOWN, error_class=ErrorClass.CONNECTION)  # noqa: E731
    ids = list(Monitor.objects.filter(organization=org).values_list("pk", flat=True))

    def record(outcome) -> tuple[float, int]:
        monitors = list(Monitor.objects.filter(pk__in=ids))
        statements = []

        def count(execute, sql, params, many, context):
            statements.append(sql)
            return execute(sql, params, many, context)

        start = time.perf_counter()
        with connection.execute_wrapper(count):
            engine.results_record(
                monitors=monitors, outcomes=[outcome() for _ in monitors], region="default"
            )
        return time.perf_counter() - start, len(statements)

    record(up)  # unknown -> up
    return {step: record(up if step in ("healthy", "recover") else down) for step in STEPS}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    setup_test_environment()
    connection.creation.create_test_db(keepdb=True, verbosity=0)
    from apps.incidents.models import Incident
    from apps.monitors import events
    from apps.plans.services import organization_change_plan, plans_ensure_defaults
    from apps.tenants.models import Organization

    plans_ensure_defaults()
    org, _ = Organization.objects.get_or_create(slug="bench-incidents", defaults={"name": "B"})
    organization_change_plan(org=org, plan_code="enterprise", source="benchmark")
    Incident.objects.filter(organization=org).delete()

    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats

        profile = cProfile.Profile()
        profile.enable()
        with_incidents = run(org, n, "with")
        profile.disable()
        pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
    else:
        with_incidents = run(org, n, "with")
    opened = Incident.objects.filter(organization=org).count()
    try:
        with events.status_changes.muted(), events.fold.muted():
            bare = run(org, n, "bare")
    finally:
        # Leave nothing behind: sweeps read every organization's rows.
        org.delete()

    print(f"database: {connection.vendor}, {n} monitors in one batch, {opened} incidents opened")
    print(f"{'step':10} {'with s':>8} {'without s':>10} {'added s':>8} {'statements':>11}")
    for step in STEPS:
        (w, ws), (b, bs) = with_incidents[step], bare[step]
        print(f"{step:10} {w:8.2f} {b:10.2f} {w - b:8.2f} {ws:5d} vs {bs:d}")


if __name__ == "__main__":
    main()
