from __future__ import annotations

import pytest

from apps.healing import services
from apps.healing.services import queue as healing_queue
from apps.plans.services import organization_change_plan
from tests.core.names import loopback_stand_in, names, pin_pair  # noqa: F401  (outbound guard)
from tests.healing.support import RESTART_SECRET, Work, serve_flaky


@pytest.fixture(autouse=True)
def _private_targets_allowed(settings):
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = True


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


@pytest.fixture
def work(monkeypatch, django_capture_on_commit_callbacks):
    queue = Work(capture=django_capture_on_commit_callbacks)
    monkeypatch.setattr(healing_queue, "send", queue.record)
    return queue


@pytest.fixture
def flaky():
    with serve_flaky() as service:
        yield service


@pytest.fixture
def pro(org):
    organization_change_plan(org=org, plan_code="pro", source="test")
    return org


@pytest.fixture
def business(org):
    organization_change_plan(org=org, plan_code="business", source="test")
    return org


def restart_policy(org, service, *, monitor=None, tag="", **fields):
    data = {
        "name": "restart api",
        "monitor": monitor,
        "tag": tag,
        "action_kind": "webhook",
        "action_config": {"url": service.url("/restart"), "secret": RESTART_SECRET},
        "auto": True,
        "verify_after_seconds": 0,
        **fields,
    }
    policy, _ = services.policy_create(org=org, data=data)
    return policy
