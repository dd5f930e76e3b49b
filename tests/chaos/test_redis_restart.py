"""Redis (broker and cache) stopped, then started again empty, under running processes.

Promise: the API keeps answering throughout (cached reads fall back to the database, rate
limits fail open); /ready says the broker is down while it is; workers and beat reconnect by
themselves; checks resume. Messages that were queued in Redis are gone with it (no
persistence here, as after a crash): check batches are re-created by the next dispatch (the
claimed ones lost are checked at their next slot), and a notification whose task was lost
is sent by the outbox sweep, since the outbox rows are the truth.
"""

from __future__ import annotations

import time
from contextlib import nullcontext

import pytest
import requests
from django.utils import timezone

from apps.alerts.models import Notification, NotificationStatus
from apps.alerts.services import channels as channel_services
from apps.monitors.models import CheckResult
from apps.tenants import services as tenant_services
from tests.alerts.support import open_incident
from tests.chaos.conftest import http_monitors, publishing_to
from tests.monitors import targets
from tests.support import wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

OUTAGE_SECONDS = 15


@pytest.fixture
def target():
    with targets.serve_http() as server:
        yield server


def test_the_api_answers_through_a_redis_outage_and_everything_reconnects(
    redis_server, stack_factory, target, settings
):
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = True
    settings.ALERTS_GROUP_WINDOW_SECONDS = 0
    org = http_monitors("enterprise", target.route("/ok"), 5, interval_seconds=10)[0].organization
    channel_services.channel_create(
        org=org, kind="webhook", name="ops", config={"url": target.route("/hook")}
    )
    key = tenant_services.api_key_create(org=org, name="chaos", scopes=["read"]).secret

    stack = stack_factory(redis_server)
    stack.web()
    stack.worker()
    stack.beat()
    wait_for(lambda: CheckResult.objects.count() >= 5, 120, "checks flowing")

    def api() -> int:
        try:
            return requests.get(
                stack.url("/api/v1/monitors/"), headers={"X-API-Key": key}, timeout=10
            ).status_code
        except requests.RequestException as exc:
            return type(exc).__name__

    assert api() == 200
    redis_server.stop()
    down_at = time.monotonic()
    statuses, ready = [], set()
    # An incident while Redis is down: its delivery task cannot be enqueued.
    with publishing_to(redis_server.url(0)):
        open_incident(lambda execute=True: nullcontext(), org, title="opened during the outage")
    while time.monotonic() - down_at < OUTAGE_SECONDS:
        statuses.append(api())
        ready.add(requests.get(stack.url("/ready"), timeout=10).status_code)
        time.sleep(0.5)
    redis_server.start()  # empty: what it held is gone
    back_at = time.monotonic()
    restarted = timezone.now()

    wait_for(
        lambda: CheckResult.objects.filter(checked_at__gt=restarted).count() >= 5,
        180,
        "checks after Redis came back (beat and worker reconnected)",
    )
    checks_back_after = time.monotonic() - back_at
    wait_for(
        lambda: Notification.objects.filter(status=NotificationStatus.SENT).count() == 1,
        120,
        "the notification opened during the outage, sent by the sweep",
    )
    sent_back_after = time.monotonic() - back_at
    statuses.append(api())

    print(
        f"\nRedis down {OUTAGE_SECONDS} s: API answered {statuses.count(200)}/{len(statuses)} "
        f"requests 200 (others: {sorted({s for s in statuses if s != 200}, key=str)}); "
        f"/ready answered {sorted(ready)}; checks recorded again {checks_back_after:.1f} s and "
        f"the outage's notification sent {sent_back_after:.1f} s after Redis returned"
    )
    assert set(statuses) == {200}
    assert 503 in ready  # the broker is down, and /ready says so
    assert target.hits["/hook"] == 1
    for name in ("web", "worker", "beat"):
        stack.assert_alive(name)  # nothing was restarted by hand
