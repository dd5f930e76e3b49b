#!/usr/bin/env python
"""What counting a request against the plan's per-minute limit costs, on the cache this
process is configured with (CACHE_URL; unset: the embedded default's shared SQLite file), with
one process and with several processes counting at once. Prints microseconds per count
(median of each process's mean over rounds) and checks that the counts add up exactly.

    DEBUG=1 .venv/bin/python benchmarks/rate_limits.py                      # SQLite file
    CACHE_URL=redis://127.0.0.1:6379/1 DEBUG=1 .venv/bin/python benchmarks/rate_limits.py
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def _count(ident: str, rounds: int, start, out) -> None:
    import django

    django.setup()
    from rest_framework.exceptions import Throttled

    from apps.plans.metering import check_rate

    granted = 0
    start.wait()
    began = time.perf_counter()
    for _ in range(rounds):
        try:
            check_rate(ident=ident, per_minute=10**9, now=6_000_030.0)
            granted += 1
        except Throttled:
            pass
    out.put(((time.perf_counter() - began) / rounds * 1e6, granted))


def run(processes: int, rounds: int) -> tuple[float, int]:
    ident = f"bench:{uuid.uuid4()}"
    start, out = multiprocessing.Event(), multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=_count, args=(ident, rounds, start, out))
        for _ in range(processes)
    ]
    for w in workers:
        w.start()
    time.sleep(2)  # every process imports Django before the start line
    start.set()
    results = [out.get() for _ in workers]
    for w in workers:
        w.join()
    import django

    django.setup()
    from django.core.cache import caches

    total = caches["default"].get(f"ratelimit:{ident}:{int(6_000_030.0 // 60)}")
    assert total == processes * rounds, (total, processes * rounds)
    return statistics.median(us for us, _ in results), total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5000)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    backend = os.environ.get("CACHE_URL") or "SQLite file (embedded default)"
    print(f"cache: {backend}")
    for n in args.processes:
        us, total = run(n, args.rounds)
        print(f"{n} process(es): {us:7.1f} us per count, {total} counted, none lost")


if __name__ == "__main__":
    main()
