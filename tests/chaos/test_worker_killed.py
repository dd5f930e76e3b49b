"""kill -9 of a check worker mid-batch, against real processes.

Promise: every check of the batch the worker had taken is checked and recorded after
redelivery (once; a second copy would be visible and counted), no monitor is left without a
next check, and status folding does not count a failure twice. On Redis, with the visibility
timeout the product sets, redelivery takes that timeout plus the 5 s sweep, not an hour; a
killed pool process (the worker itself alive) puts its batch back at once.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter

import pytest
from django.utils import timezone

from apps.monitors.models import CheckResult, Monitor, MonitorSchedule
from tests.chaos.conftest import VISIBILITY_TIMEOUT, http_monitors
from tests.monitors import targets
from tests.support import wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

CHECKS = 20
SLOW_SECONDS = 4.0  # each check hangs this long, so the batch is surely mid-flight


@pytest.fixture
def slow_target():
    with targets.serve_http() as target:
        yield target


def _due_monitors(url: str) -> list[Monitor]:
    monitors = http_monitors(
        "pro",
        url,
        CHECKS,
        name="slow",
        interval_seconds=3600,  # checked again only if the batch is redelivered
        timeout_seconds=15,
        failure_threshold=3,
    )
    MonitorSchedule.objects.filter(monitor__in=monitors).update(next_check_at=timezone.now())
    return monitors


@pytest.mark.parametrize(
    ("killed", "pool"),
    [("worker", "prefork"), ("pool process", "prefork"), ("worker", "threads")],
)
def test_a_killed_workers_batch_is_checked_again_and_recorded_once(
    redis_server, stack_factory, slow_target, killed, pool
):
    """The threads pool (several batches feeding one check loop, the check queues'
    recommended pool) loses what it had in flight the same way: back after the timeout."""
    url = slow_target.route("/slow", status=503, delay=SLOW_SECONDS)
    monitors = _due_monitors(url)
    stack = stack_factory(redis_server)
    stack.worker("w1", pool=pool, concurrency=1 if pool == "prefork" else 4)
    stack.beat()
    wait_for(lambda: slow_target.hits["/slow"] >= CHECKS, 90, "the batch in flight")
    assert CheckResult.objects.count() == 0  # nothing recorded yet: it is mid-batch

    killed_at = time.monotonic()
    if killed == "worker":
        stack.kill("w1")  # kill -9 of the worker and its pool process (or threads)
        stack.worker("w2", pool=pool, concurrency=1 if pool == "prefork" else 4)
    else:
        (child,) = stack.children("w1")
        os.kill(child, signal.SIGKILL)

    wait_for(
        lambda: CheckResult.objects.values("monitor").distinct().count() == CHECKS,
        VISIBILITY_TIMEOUT + 90,
        "every claimed check recorded after redelivery",
    )
    redelivered_after = time.monotonic() - killed_at
    time.sleep(SLOW_SECONDS + 2)  # room for a duplicate to show, if there were one

    per_monitor = Counter(CheckResult.objects.values_list("monitor_id", flat=True))
    duplicates = sum(n - 1 for n in per_monitor.values())
    print(
        f"\nkill -9 of the {killed} ({pool} pool) mid-batch: {CHECKS} checks recorded "
        f"{redelivered_after:.1f} s after the kill (visibility timeout {VISIBILITY_TIMEOUT} s), "
        f"{duplicates} duplicate(s), target saw {slow_target.hits['/slow']} requests"
    )
    assert set(per_monitor) == {m.pk for m in monitors}
    assert max(per_monitor.values()) <= 2
    # Status folding counted each recorded failure once.
    for monitor in Monitor.objects.filter(pk__in=[m.pk for m in monitors]):
        assert monitor.consecutive_failures == per_monitor[monitor.pk]
    # Nobody left unscheduled: each has its next check, an interval on.
    later = timezone.now() + timezone.timedelta(minutes=50)
    assert (
        MonitorSchedule.objects.filter(monitor__in=monitors, next_check_at__gt=later).count()
        == CHECKS
    )


def test_a_killed_check_process_costs_its_batch_one_more_try_and_nothing_else(
    redis_server, stack_factory, slow_target
):
    """HEALTHORCH_CHECK_PROCESS (decision 0027): kill -9 of the worker's check process
    mid-batch, the worker itself alive. The batch runs again on a new check process at once
    (no redelivery wait): every check is recorded exactly once, and the worker goes on."""
    url = slow_target.route("/slow", status=503, delay=SLOW_SECONDS)
    monitors = _due_monitors(url)
    stack = stack_factory(redis_server, HEALTHORCH_CHECK_PROCESS="1")
    stack.worker("w1", pool="threads", concurrency=4)
    stack.beat()
    wait_for(lambda: slow_target.hits["/slow"] >= CHECKS, 90, "the batch in flight")
    assert CheckResult.objects.count() == 0
    (checker,) = stack.children("w1")  # the threads pool's only child is the check process
    killed_at = time.monotonic()
    os.kill(checker, signal.SIGKILL)

    wait_for(
        lambda: CheckResult.objects.values("monitor").distinct().count() == CHECKS,
        60,
        "every claimed check recorded after the check process was replaced",
    )
    recorded_after = time.monotonic() - killed_at
    time.sleep(SLOW_SECONDS + 2)  # room for a duplicate to show, if there were one
    per_monitor = Counter(CheckResult.objects.values_list("monitor_id", flat=True))
    print(
        f"\nkill -9 of the check process mid-batch: {CHECKS} checks recorded "
        f"{recorded_after:.1f} s after the kill, target saw {slow_target.hits['/slow']} requests"
    )
    assert set(per_monitor) == {m.pk for m in monitors}
    assert max(per_monitor.values()) == 1  # the batch was not redelivered: run again, once
    assert recorded_after < VISIBILITY_TIMEOUT  # no wait for the broker
    assert slow_target.hits["/slow"] == 2 * CHECKS
    stack.assert_alive("w1")
    (replacement,) = stack.children("w1")
    assert replacement != checker
    for monitor in Monitor.objects.filter(pk__in=[m.pk for m in monitors]):
        assert monitor.consecutive_failures == 1
