"""The console: policies and attempts scoped to the member's organization (another tenant's
rows are 404), attempts read-only, the action's secret never shown."""

from __future__ import annotations

import pytest

from apps.healing.models import HealingAttempt
from tests.conftest import console
from tests.healing.conftest import restart_policy
from tests.healing.support import RESTART_SECRET
from tests.healing.test_api import tcp_monitor
from tests.incidents.conftest import down, feed

pytestmark = pytest.mark.django_db


@pytest.fixture
def scene(org, flaky):
    monitor = tcp_monitor(org)
    policy = restart_policy(org, flaky, monitor=monitor, auto=False)
    feed(monitor, down(), down())
    return policy, HealingAttempt.objects.get()


def test_members_see_their_policies_and_attempts_but_not_the_secret(owner, scene):
    policy, attempt = scene
    client = console(owner)
    page = client.get(f"/admin/healing/healingpolicy/{policy.pk}/change/")
    assert page.status_code == 200
    assert RESTART_SECRET.encode() not in page.content
    shown = client.get(f"/admin/healing/healingattempt/{attempt.pk}/change/")
    assert shown.status_code == 200
    assert b'name="_save"' not in shown.content  # history is read-only
    assert client.get("/admin/healing/healingattempt/").status_code == 200
