#!/usr/bin/env python
"""How long the slo_burn rule takes to evaluate 10,000 monitors checked every minute.

Seeds (once, kept) 10,000 monitors of one organization with six hours of one-minute results
(3.6 million rows, written by one INSERT ... SELECT), then, with none, 1 %, 10 % or all of the
monitors burning fast or slow (outcomes rewritten, not rows added), times `--rounds` times the
evaluation (`burn_evaluation`: which monitors can burn, and their burn rates over every window
that decides) and once the whole sweep, which also opens an incident per burning monitor
through the incidents pipeline. Prints medians, statements and the machine's load.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/healthorch_bench \\
    DEBUG=1 .venv/bin/python benchmarks/slo_burn.py [--monitors 10000] [--rounds 5]
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
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

ORG_SLUG = "bench-slo"
HOURS = 6


def prepare(total: int):
    from apps.monitors.models import Monitor, MonitorKind
    from apps.plans import services
    from apps.tenants.models import Organization

    services.plans_ensure_defaults()
    org, _ = Organization.objects.get_or_create(slug=ORG_SLUG, defaults={"name": "Bench SLO"})
    if Monitor.objects.filter(organization=org).count() != total:
        Monitor.objects.filter(organization=org).delete()
        Monitor.objects.bulk_create(
            [
                Monitor(
                    organization=org,
                    name=f"slo {i}",
                    slug=f"slo-{i}",
                    kind=MonitorKind.TCP,
                    config={"host": "127.0.0.1", "port": 9},
                    interval_seconds=60,
                )
                for i in range(total)
            ],
            batch_size=2000,
        )
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), max(checked_at) FROM monitors_checkresult WHERE organization_id = %s",
            [org.pk],
        )
        rows, last = cursor.fetchone()
        if rows == total * HOURS * 60:
            # Kept from an earlier run: sweep as if it were just after the last check.
            return org, last + timedelta(seconds=20)
        cursor.execute("DELETE FROM monitors_checkresult WHERE organization_id = %s", [org.pk])
        cursor.execute(
            "INSERT INTO monitors_checkresult (monitor_id, organization_id, checked_at, region, outcome, "
            "response_time_ms, status_code, error_class, error_message, timings, "
            "assertion_failures) "
            "SELECT m.id, m.organization_id, now() - make_interval(mins => g) + interval '10 s', "
            "'default', 'up', 20, NULL, '', '', '{}', '[]' "
            "FROM monitors_monitor m, generate_series(0, %s) g "
            "WHERE m.organization_id = %s",
            [HOURS * 60 - 1, org.pk],
        )
        rows = cursor.rowcount
        cursor.execute("VACUUM ANALYZE monitors_checkresult")
        cursor.execute(
            "SELECT max(checked_at) FROM monitors_checkresult WHERE organization_id = %s",
            [org.pk],
        )
        (last,) = cursor.fetchone()
    print(f"seeded {rows:,} results in {time.perf_counter() - started:.1f} s")
    return org, last + timedelta(seconds=20)


def set_failing(org, share: float, *, every: int, hours: int, now) -> int:
    """The first `share` of the monitors fail every `every`-th check of the last `hours`."""
    from apps.monitors.models import Monitor

    ids = list(
        Monitor.objects.filter(organization=org).order_by("slug").values_list("pk", flat=True)
    )
    failing = ids[: round(len(ids) * share)]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE monitors_checkresult SET outcome = 'up' "
            "WHERE organization_id = %s AND outcome = 'down'",
            [org.pk],
        )
        if failing:
            cursor.execute(
                "UPDATE monitors_checkresult SET outcome = 'down' WHERE monitor_id = ANY(%s) "
                "AND checked_at > %s - make_interval(hours => %s) "
                "AND extract(minute FROM checked_at)::int %% %s = 0",
                [failing, now, hours, every],
            )
        cursor.execute("ANALYZE monitors_checkresult")
    return len(failing)


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitors", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    setup_test_environment()
    connection.creation.create_test_db(keepdb=True, verbosity=0)
    from apps.incidents.models import Incident, RuleKind
    from apps.incidents.slo import burn_evaluation, slo_burn_sweep

    org, now = prepare(args.monitors)
    print(f"load average before: {load()}")
    print(
        f"{'scenario':>18} {'failing':>8} {'evaluated':>9} {'eval median s':>13} "
        f"{'stmts':>5} {'sweep s':>8} {'opened':>6}"
    )
    # (name, share of monitors failing, one check in `every` down, over the last `hours`):
    # 1 in 4 for an hour is a fast burn (25x on the free plan's 1 % budget); 1 in 12 for six
    # hours a slow one (8.3x), the case that reads six hours of results.
    scenarios = [
        ("nothing failing", 0.0, 4, 1),
        ("1% burning fast", 0.01, 4, 1),
        ("10% burning fast", 0.1, 4, 1),
        ("all burning fast", 1.0, 4, 1),
        ("10% burning slow", 0.1, 12, 6),
        ("all burning slow", 1.0, 12, 6),
    ]
    for name, share, every, hours in scenarios:
        Incident.objects.filter(organization=org, rule=RuleKind.SLO_BURN).delete()
        failing = set_failing(org, share, every=every, hours=hours, now=now)
        times, statements = [], 0
        for _ in range(args.rounds):
            with CaptureQueriesContext(connection) as seen:
                started = time.perf_counter()
                monitors, _, _ = burn_evaluation(now=now)
                times.append(time.perf_counter() - started)
            statements = max(statements, len(seen))
        started = time.perf_counter()
        opened = slo_burn_sweep(now=now)["opened"]
        sweep = time.perf_counter() - started
        print(
            f"{name:>18} {failing:>8} {len(monitors):>9} {statistics.median(times):>13.3f} "
            f"{statements:>5} {sweep:>8.2f} {opened:>6}",
            flush=True,
        )
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
