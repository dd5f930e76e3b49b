#!/usr/bin/env python
"""`matches` assertions on bodies that make a backtracking engine crawl.

Times `body matches "<pattern>"` (the product's compiled assertion, RE2) over bodies of "a" of
growing size, next to Python's `re` on the same pattern, for patterns that backtrack there:
`a*a*b` (cubic in Python's re: every start, every split), `(a+)+$`, `.*foo` (quadratic).
Python's `re` runs on small bodies only and stops after the first size over a second (it would
take hours at 64 KiB); RE2 goes to 64 KiB. Needs no database.

    DEBUG=1 .venv/bin/python benchmarks/assertions.py [--repeat 5]

A few seconds. Target: each RE2 evaluation at 64 KiB well under 50 ms (a check worker runs
hundreds of checks at once; one tenant's pattern must not stall them).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthorch.settings")

import django

django.setup()

from apps.monitors.assertions import compile_assertion  # noqa: E402
from apps.monitors.checkers.base import ResponseContext  # noqa: E402

PATTERNS = ("a*a*b", "(a+)+$", ".*foo")
SIZES = (256, 1024, 4096, 16384, 65536)


def _median_ms(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    print(f"{'pattern':<10} {'body':>7} {'RE2 ms':>9} {'Python re ms':>13}")
    for pattern in PATTERNS:
        compiled = compile_assertion(f'body matches "{pattern}"')
        python = re.compile(pattern)
        python_gave_up = False
        for size in SIZES:
            ctx = ResponseContext(status=200, response_time_ms=1, headers={}, body="a" * size)
            re2_ms = _median_ms(lambda c=compiled, x=ctx: c.evaluate(x), args.repeat)
            if python_gave_up or size > 4096:
                python_cell = "(not run)"
            else:
                body = ctx.body
                python_ms = _median_ms(lambda p=python, b=body: p.search(b), 1)
                python_cell = f"{python_ms:.1f}"
                python_gave_up = python_ms > 1000
            print(f"{pattern:<10} {size:>7} {re2_ms:>9.2f} {python_cell:>13}")


if __name__ == "__main__":
    main()
