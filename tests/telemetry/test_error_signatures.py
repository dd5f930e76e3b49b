"""Error signatures: mining groups error lines into drain3 templates per organization and source,
its state persists between runs (and processes), counts are upserted set-based. Runs on both
databases (DATABASE_URL=postgres://... for PostgreSQL's upserts, without it SQLite's)."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.telemetry import mining, services
from apps.telemetry.models import ErrorMiner, ErrorSignature, ErrorSignatureHour
from apps.telemetry.storage import logs_write

pytestmark = pytest.mark.django_db


def write(org, *lines, at=None):
    """Lines (source, level, message) at `at` (default now), in one batch."""
    at = at or timezone.now()
    logs_write(
        org_id=org.pk,
        rows=[(at, source, level, message, {}, "", "") for source, level, message in lines],
    )


def test_lines_differing_in_numbers_ids_and_addresses_are_one_signature(org):
    write(
        org,
        ("api", "error", "timeout after 3000 ms talking to 10.0.0.7:5432 for user 41"),
        ("api", "error", "timeout after 12 ms talking to 192.168.1.20:6379 for user 9"),
        (
            "api",
            "fatal",
            "timeout after 7.5 ms talking to 10.1.2.3:80 for user 1234",
        ),
        ("api", "error", "order 3f2a9c1e-1b2c-4d5e-8f90-aabbccddeeff not found"),
        ("api", "error", "order 0d9e8f7a-6b5c-4d3e-2f10-ffeeddccbbaa not found"),
        ("api", "info", "timeout after 5 ms talking to 10.0.0.1:1 for user 2"),
        ("api", "warn", "timeout after 5 ms talking to 10.0.0.1:1 for user 2"),
        ("worker", "error", "timeout after 8 ms talking to 10.0.0.9:1 for user 3"),
    )
    result = services.error_signatures_mine()
    assert result["lines"] == 6  # error and fatal only
    sigs = {
        (s.source, s.template): s.total for s in ErrorSignature.objects.filter(organization=org)
    }
    assert sigs == {
        ("api", "timeout after <NUM> ms talking to <IP> for user <NUM>"): 3,
        ("api", "order <UUID> not found"): 2,
        ("worker", "timeout after <NUM> ms talking to <IP> for user <NUM>"): 1,
    }


def test_a_second_run_continues_from_the_cursor_and_the_stored_state(org):
    now = timezone.now()
    write(org, ("api", "error", "disk /dev/sda1 full: 100 blocks left"), at=now)
    services.error_signatures_mine(now=now)
    [first] = ErrorSignature.objects.filter(organization=org)
    # Nothing held in memory between runs: the second one rebuilds the miner from the row.
    write(org, ("api", "error", "disk /dev/sda1 full: 7 blocks left"), at=now)
    write(org, ("api", "error", "disk /dev/sda1 full: 99 blocks left"), at=now)
    result = services.error_signatures_mine(now=now)
    assert result["lines"] == 2
    [again] = ErrorSignature.objects.filter(organization=org)
    assert (again.pk, again.hash, again.total) == (first.pk, first.hash, 3)
    [hour] = ErrorSignatureHour.objects.filter(signature=again)
    assert hour.count == 3
    # A run with nothing new mines nothing and changes nothing.
    assert services.error_signatures_mine(now=now)["lines"] == 0
    assert ErrorSignature.objects.get(pk=first.pk).total == 3


def test_the_stored_state_is_read_by_another_process(org):
    write(org, ("api", "error", "payment 1234 declined by gateway 7"))
    services.error_signatures_mine()
    state = bytes(ErrorMiner.objects.get(organization=org).state)
    [sig] = ErrorSignature.objects.filter(organization=org)
    # A fresh interpreter (no database, nothing shared) rebuilds the miner from the bytes and
    # finds the same cluster for a new line of the same kind.
    code = (
        "import sys, django\n"
        "django.setup()\n"
        "from apps.telemetry.mining import Miners\n"
        "m = Miners(sys.stdin.buffer.read())\n"
        "print(m.miner('api').match('payment 99 declined by gateway 3').cluster_id)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=state, capture_output=True, check=True, timeout=60
    )
    assert int(out.stdout) == sig.cluster_id


def test_hours_and_first_last_seen_follow_the_lines_times(org):
    now = timezone.now().replace(minute=30, second=0, microsecond=0)
    write(org, ("api", "error", "boom 1"), at=now - timedelta(hours=2))
    write(org, ("api", "error", "boom 2"), ("api", "error", "boom 3"), at=now)
    services.error_signatures_mine(now=now)
    [sig] = ErrorSignature.objects.filter(organization=org)
    assert (sig.first_seen, sig.last_seen, sig.total) == (now - timedelta(hours=2), now, 3)
    hours = dict(ErrorSignatureHour.objects.filter(signature=sig).values_list("hour", "count"))
    base = now.replace(minute=0)
    assert hours == {base - timedelta(hours=2): 1, base: 2}


def test_organizations_are_mined_apart(org, other_org):
    write(org, ("api", "error", "secret thing of acme 1"))
    write(other_org, ("api", "error", "secret thing of acme 2"))
    services.error_signatures_mine()
    assert ErrorSignature.objects.filter(organization=org).get().total == 1
    assert ErrorSignature.objects.filter(organization=other_org).get().total == 1


def test_a_backlog_is_mined_in_bounded_batches(org):
    write(org, *[("api", "error", f"job {i} failed") for i in range(25)])
    first = mining.signatures_mine(batch=10)
    assert first["lines"] == 10
    assert ErrorMiner.objects.get(organization=org).backlog
    mining.signatures_mine(batch=10)
    last = mining.signatures_mine(batch=10)
    assert last["lines"] == 5
    assert not ErrorMiner.objects.get(organization=org).backlog
    assert ErrorSignature.objects.get(organization=org).total == 25


def test_a_run_past_its_time_budget_leaves_the_rest_for_the_next(org):
    write(org, ("api", "error", "job 1 failed"))
    assert mining.signatures_mine(budget=0)["organizations"] == 0
    assert ErrorMiner.objects.get(organization=org).backlog  # found, waiting
    assert mining.signatures_mine()["lines"] == 1


def test_queries_do_not_grow_with_lines_or_signatures(org, django_assert_max_num_queries):
    write(org, ("api", "error", "warmup 1"))
    services.error_signatures_mine()
    write(
        org,
        *[
            (f"svc{i % 7}", "error", f"{word} failed with code {i}")
            for i in range(300)
            for word in ("alpha", "beta")
        ],
    )
    # Discovery (lock, max, orgs, rows, flags, mark), then per organization: lock, read lines,
    # signatures upsert + read back, hour and minute upserts, the cursor; then the prune.
    with django_assert_max_num_queries(20):
        result = services.error_signatures_mine()
    assert result["lines"] == 600
    assert ErrorSignature.objects.filter(organization=org).count() == 1 + 14


def test_the_beat_task_mines(org):
    from apps.telemetry.tasks import mine_error_signatures
    from healthorch.schedules import BEAT_SCHEDULE

    assert BEAT_SCHEDULE["mine-error-signatures"]["task"] == mine_error_signatures.name
    write(org, ("api", "error", "queue 12 is full"))
    assert mine_error_signatures.apply().get()["lines"] == 1
