"""kill -9 of a worker mid-delivery of notifications, against real processes.

Promise: every notification is delivered; a message delivered twice (the worker died after
the receiver took it, before the row was marked sent) carries the same idempotency key both
times; no row is marked sent without its message having reached the receiver.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from contextlib import nullcontext

import pytest

from apps.alerts.models import Notification, NotificationStatus
from apps.alerts.services import channels as channel_services
from apps.plans.services import organization_change_plan
from tests.alerts.support import open_incident
from tests.chaos.conftest import publishing_to
from tests.factories import OrganizationFactory
from tests.monitors import targets
from tests.support import wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.django_db(transaction=True)]

INCIDENTS = 5
LEASE_SECONDS = 30  # the settings' minimum: a send in flight this long is presumed lost


@pytest.fixture
def slow_receiver():
    """Takes each webhook (recorded on arrival) and answers 2 s later."""
    with targets.serve_http() as receiver:
        yield receiver


def test_a_worker_killed_mid_send_loses_no_notification(
    redis_server, stack_factory, slow_receiver, settings
):
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = True
    settings.ALERTS_GROUP_WINDOW_SECONDS = 0  # one message per incident, no storm grouping
    org = OrganizationFactory()
    organization_change_plan(org=org, plan_code="pro", source="test")
    channel_services.channel_create(
        org=org,
        kind="webhook",
        name="ops",
        config={"url": slow_receiver.route("/hook", delay=2.0)},
    )
    stack = stack_factory(
        redis_server,
        ALERTS_SENDING_LEASE_SECONDS=str(LEASE_SECONDS),
        ALERTS_GROUP_WINDOW_SECONDS="0",
    )
    stack.worker("w1")
    with publishing_to(redis_server.url(0)):
        for i in range(INCIDENTS):
            open_incident(lambda execute=True: nullcontext(), org, title=f"down {i}")
    assert Notification.objects.count() == INCIDENTS

    wait_for(lambda: slow_receiver.hits["/hook"] >= 2, 90, "deliveries under way")
    killed_at = time.monotonic()
    stack.kill("w1")  # mid-send: the receiver has the message, the row says `sending`
    stack.worker("w2")
    stack.beat()  # its notification sweep recovers sends past their lease

    wait_for(
        lambda: Notification.objects.filter(status=NotificationStatus.SENT).count() == INCIDENTS,
        LEASE_SECONDS + 120,
        "every notification sent",
    )
    all_sent_after = time.monotonic() - killed_at

    keys = Counter(
        json.loads(seen.body)["extra"]["idempotency_key"] for seen in slow_receiver.requests
    )
    rows = dict(Notification.objects.values_list("idempotency_key", "status"))
    duplicates = {key: n for key, n in keys.items() if n > 1}
    print(
        f"\nkill -9 mid-delivery: {INCIDENTS} notifications sent {all_sent_after:.1f} s after "
        f"the kill (lease {LEASE_SECONDS} s); receiver got {sum(keys.values())} requests, "
        f"{len(duplicates)} key(s) twice: {sorted(duplicates.values())}"
    )
    # Every row sent, and each one's message reached the receiver.
    assert set(rows.values()) == {NotificationStatus.SENT}
    assert set(keys) == set(rows)
    # A duplicate is the same message again (same key), never a third copy.
    assert max(keys.values()) <= 2
