"""Beat killed for several intervals, then started again, under a running web and worker.

Promise: the product notices by itself (/health turns 503 with the scheduler stale, within
the threshold plus a tick; /ready stays 200, the web pods are fine) and recovers by itself
(/health 200 again once beat is back); the checks that fell due meanwhile are skipped, and on
return the monitors are checked at their own slots, spread over the interval as before, not
all in one tick.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from apps.monitors.models import CheckResult, MonitorSchedule
from tests.chaos.conftest import http_monitors
from tests.monitors import targets
from tests.support import wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

MONITORS = 20
INTERVAL = 10
STALE_AFTER = 5
OUTAGE_SECONDS = 30


@pytest.fixture
def target():
    with targets.serve_http() as server:
        yield server


def _phases() -> dict:
    return {
        m: round(at.timestamp() % INTERVAL, 3)
        for m, at in MonitorSchedule.objects.values_list("monitor_id", "next_check_at")
    }


def test_a_stopped_beat_is_noticed_and_its_return_does_not_stampede(
    redis_server, stack_factory, target, settings
):
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = True
    monitors = http_monitors("enterprise", target.route("/ok"), MONITORS, interval_seconds=INTERVAL)
    # Spread evenly over the interval, as a fleet of monitors created over time would be.
    start = timezone.now() + timedelta(seconds=15)
    for i, m in enumerate(monitors):
        MonitorSchedule.objects.filter(monitor=m).update(
            next_check_at=start + timedelta(seconds=INTERVAL * i / MONITORS)
        )
    phases_before = _phases()

    stack = stack_factory(redis_server, HEALTHORCH_SCHEDULER_STALE_SECONDS=str(STALE_AFTER))
    stack.web()
    stack.worker()
    stack.beat()

    def health() -> int:
        return requests.get(stack.url("/health"), timeout=10).status_code

    wait_for(lambda: CheckResult.objects.count() >= MONITORS, 120, "a round of checks")
    assert health() == 200

    stack.kill("beat", signal.SIGKILL)
    stopped = time.monotonic()
    wait_for(lambda: health() == 503, 60, "/health to notice the stale scheduler")
    noticed_after = time.monotonic() - stopped
    body = requests.get(stack.url("/health"), timeout=10).json()
    assert body["scheduler"]["status"] == "stale"
    assert requests.get(stack.url("/ready"), timeout=10).status_code == 200
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped)))

    stack.beat()
    returned = time.monotonic()
    returned_at = timezone.now()
    wait_for(lambda: health() == 200, 90, "/health to recover")
    recovered_after = time.monotonic() - returned
    # Two whole intervals after the first check since the return.
    wait_for(lambda: CheckResult.objects.filter(checked_at__gt=returned_at).exists(), 90, "checks")
    first = CheckResult.objects.filter(checked_at__gt=returned_at).order_by("checked_at")[0]
    window_end = first.checked_at + timedelta(seconds=2 * INTERVAL)
    wait_for(lambda: timezone.now() > window_end + timedelta(seconds=3), 60, "two intervals")

    after = CheckResult.objects.filter(
        checked_at__gte=first.checked_at, checked_at__lt=window_end
    ).values_list("monitor_id", "checked_at")
    per_second = Counter(int((at - first.checked_at).total_seconds()) for _, at in after)
    per_monitor = Counter(m for m, _ in after)
    biggest_second = max(per_second.values())
    print(
        f"\nbeat killed {OUTAGE_SECONDS} s: /health 503 after {noticed_after:.1f} s (threshold "
        f"{STALE_AFTER} s), 200 again {recovered_after:.1f} s after beat restarted; in the two "
        f"intervals after the return {len(after)} checks, at most {biggest_second} in one "
        f"second (of {MONITORS} monitors); per second: {[per_second[s] for s in range(2 * INTERVAL)]}"
    )
    # Spread, not a herd: before the fix all 20 ran in the same tick, every interval.
    assert biggest_second <= MONITORS // 2
    assert set(per_monitor) == {m.pk for m in monitors}  # each checked again, none stuck
    assert _phases() == phases_before  # every monitor kept its slot
