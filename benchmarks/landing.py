#!/usr/bin/env python
"""The front page `/`: server time served from the cache next to rendered afresh (the cache
emptied before each request), and the queries of each, with the machine's load.

For each: 5 warm-up requests, then `--rounds` timed requests through Django's test client in
this process (the whole server side: middleware, view, queries, template; no network).
Prints median and p95 in ms, the ratio of the medians, and the queries per request.

    DEBUG=1 DATABASE_URL=postgres://postgres@127.0.0.1:5432/healthorch_bench \\
    CACHE_URL=redis://127.0.0.1:6379/1 LOG_LEVEL=WARNING \\
    .venv/bin/python benchmarks/landing.py [--rounds 200]

Runs in the kept test database `test_<name>` (on SQLite, var/test_healthorch.sqlite3), which
holds the seeded plans.
"""

from __future__ import annotations

import argparse
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

from django.core.cache import cache  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402


def measure(client: Client, rounds: int, *, fresh: bool) -> tuple[float, float, int]:
    def one() -> float:
        if fresh:
            cache.clear()
        start = time.perf_counter_ns()
        response = client.get("/")
        elapsed = (time.perf_counter_ns() - start) / 1e6
        assert response.status_code == 200
        return elapsed

    for _ in range(5):
        one()
    samples = sorted(one() for _ in range(rounds))
    with CaptureQueriesContext(connection) as queries:
        one()
    return statistics.median(samples), samples[int(len(samples) * 0.95)], len(queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    setup_test_environment()
    connection.creation.create_test_db(keepdb=True, verbosity=0)
    from apps.plans.services import plans_ensure_defaults

    plans_ensure_defaults()
    client = Client()
    load = Path("/proc/loadavg").read_text().split()[:3]
    cached = measure(client, args.rounds, fresh=False)
    fresh = measure(client, args.rounds, fresh=True)
    print(f"machine load (1/5/15 min): {' '.join(load)}; {args.rounds} requests each")
    print(f"{'front page':<22} {'median ms':>10} {'p95 ms':>8} {'queries':>8}")
    print(f"{'from the cache':<22} {cached[0]:>10.2f} {cached[1]:>8.2f} {cached[2]:>8}")
    print(f"{'rendered afresh':<22} {fresh[0]:>10.2f} {fresh[1]:>8.2f} {fresh[2]:>8}")
    print(f"rendered / cached (medians): {fresh[0] / cached[0]:.1f}x")


if __name__ == "__main__":
    main()
