"""Holding Python's cyclic garbage collector off around short, bounded work whose timing is
the product's promise.

A gen-2 collection walks every object of the process (Django, Celery, ORM rows: hundreds of
thousands in a worker) and takes 100+ ms; it is triggered by allocations, so it lands in the
middle of whatever allocates most: a batch of checks in flight (every response then timed
slower), a dispatcher's claim of 5,000 rows (row locks held longer), a status page drawing
4,500 bars (a visitor waiting). Work that is bounded leaves bounded garbage, collected as
usual right after.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_held() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
