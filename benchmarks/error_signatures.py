#!/usr/bin/env python
"""How fast error lines are mined into signatures (apps.telemetry.mining), in lines per second.

Seeds (once, kept) `--lines` error lines of one organization over 6 sources and 40 kinds of
message with varying numbers, UUIDs and addresses, then, `--rounds` times, side by side:

- **drain3 alone**: the same messages through the organization's per-source TemplateMiners
  in memory (masking and clustering, no database): the ceiling;
- **cold**: the whole table mined from scratch by `signatures_mine` in batches of `--batch`
  (state, cursor, signature and count upserts included), as after enabling mining;
- **warm**: one more batch of `--batch` new lines on top of the mined state (what a busy
  minute costs: the state is read, extended and written back).

Prints medians, the ratio to drain3 alone, statements per run and the machine's load.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/healthorch_bench \\
    DEBUG=1 .venv/bin/python benchmarks/error_signatures.py [--lines 50000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
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
from django.utils import timezone  # noqa: E402

ORG_SLUG = "bench-errsig"
SOURCES = ["api", "worker", "billing", "auth", "search", "mailer"]
KINDS = [
    "timeout after {n} ms talking to {ip}:{port}",
    "order {uuid} not found for customer {n}",
    "payment {n} declined by gateway {small}: code {code}",
    "connection pool exhausted ({n} of {small} in use)",
    "request {hex} failed with status {code} after {n} ms",
]
WORDS = ["db", "cache", "queue", "index", "session", "token", "upload", "report"]


def message(rng: random.Random, kind: int) -> str:
    template = KINDS[kind % len(KINDS)]
    word = WORDS[kind // len(KINDS) % len(WORDS)]
    return f"{word}: " + template.format(
        n=rng.randint(1, 100_000),
        ip=".".join(str(rng.randint(1, 254)) for _ in range(4)),
        port=rng.randint(1, 65535),
        uuid=uuid.UUID(int=rng.getrandbits(128)),
        small=rng.randint(1, 64),
        code=rng.choice([400, 404, 409, 500, 502, 503]),
        hex=f"{rng.getrandbits(64):016x}",
    )


def lines(rng: random.Random, n: int, at) -> list[tuple]:
    return [
        (at, rng.choice(SOURCES), "error", message(rng, rng.randrange(40)), {}, "", "")
        for _ in range(n)
    ]


def prepare(total: int):
    from apps.plans import services
    from apps.telemetry.models import LogLine
    from apps.telemetry.storage import logs_write
    from apps.tenants.models import Organization

    services.plans_ensure_defaults()
    org, _ = Organization.objects.get_or_create(slug=ORG_SLUG, defaults={"name": "Bench errors"})
    if LogLine.objects.filter(organization=org).count() != total:
        LogLine.objects.filter(organization=org).delete()
        rng = random.Random(7)
        at = timezone.now() - timedelta(minutes=30)
        for start in range(0, total, 5000):
            logs_write(org_id=org.pk, rows=lines(rng, min(5000, total - start), at))
    return org


def reset(org) -> None:
    from apps.telemetry.models import ErrorMiner, ErrorSignature

    ErrorSignature.objects.filter(organization=org).delete()
    ErrorMiner.objects.filter(organization=org).delete()
    ErrorMiner.objects.filter(organization__isnull=True).update(cursor=0)


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    setup_test_environment()
    connection.creation.create_test_db(keepdb=True, verbosity=0)

    from apps.telemetry import mining
    from apps.telemetry.models import ErrorSignature, LogLine
    from apps.telemetry.storage import logs_write

    org = prepare(args.lines)
    messages = list(
        LogLine.objects.filter(organization=org).order_by("id").values_list("source", "message")
    )
    print(f"database: {connection.vendor}; {len(messages)} error lines, batch {args.batch}")
    print(f"load average before: {load()}")
    alone, cold, warm, statements = [], [], [], []
    for r in range(args.rounds):
        miners = mining.Miners()
        started = time.perf_counter()
        for source, text in messages:
            miners.add(source, text)
        alone.append(len(messages) / (time.perf_counter() - started))

        reset(org)
        started = time.perf_counter()
        with CaptureQueriesContext(connection) as ctx:
            mined = 0
            while True:
                done = mining.signatures_mine(batch=args.batch)["lines"]
                mined += done
                if done < args.batch:
                    break
        cold.append(mined / (time.perf_counter() - started))
        statements.append(len(ctx.captured_queries))

        extra = lines(random.Random(100 + r), args.batch, timezone.now())
        logs_write(org_id=org.pk, rows=extra)
        started = time.perf_counter()
        done = mining.signatures_mine(batch=args.batch)["lines"]
        warm.append(done / (time.perf_counter() - started))
        LogLine.objects.filter(organization=org, id__gt=mining_top(org, len(messages))).delete()
    signatures = ErrorSignature.objects.filter(organization=org).count()
    print(f"signatures: {signatures} (6 sources x 40 kinds)")
    a, c, w = (statistics.median(x) for x in (alone, cold, warm))
    print(f"drain3 alone (memory):      {a:10,.0f} lines/s (median of {args.rounds})")
    print(f"cold, whole table:          {c:10,.0f} lines/s  ({c / a:.2f}x drain3 alone)")
    print(f"warm, one batch on a state: {w:10,.0f} lines/s  ({w / a:.2f}x drain3 alone)")
    print(f"statements per cold mining: {statistics.median(statements):.0f}")
    print(f"load average after: {load()}")


def mining_top(org, seeded: int) -> int:
    """The id of the last seeded line (the warm round's lines come after it)."""
    from apps.telemetry.models import LogLine

    return (
        LogLine.objects.filter(organization=org)
        .order_by("id")
        .values_list("id", flat=True)[seeded - 1]
    )


if __name__ == "__main__":
    main()
