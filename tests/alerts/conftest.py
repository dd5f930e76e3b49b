from __future__ import annotations

import pytest
from django.utils import timezone

from apps.alerts.services import channels as channel_services
from apps.alerts.services import outbox
from apps.plans.services import organization_change_plan
from tests.alerts.support import WEBHOOK_SECRET, Nudges, serve_receiver, serve_smtp
from tests.core.names import loopback_stand_in, names, pin_pair  # noqa: F401  (outbound guard)


@pytest.fixture(autouse=True)
def _private_targets_allowed(settings):
    settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS = True


@pytest.fixture
def receiver():
    with serve_receiver() as target:
        yield target


@pytest.fixture
def mailbox(settings):
    with serve_smtp(settings) as box:
        yield box


@pytest.fixture
def nudges(monkeypatch, django_capture_on_commit_callbacks):
    """The broker, replaced by a recorder the test drains (see tests/alerts/support.py)."""
    queue = Nudges(capture=django_capture_on_commit_callbacks)
    monkeypatch.setattr(outbox, "_send", queue.record)
    outbox._flushes_scheduled.clear()
    return queue


@pytest.fixture
def clock(time_machine):
    """Time stands still (whole seconds) until a test shifts it."""
    time_machine.move_to(timezone.now().replace(microsecond=0), tick=False)
    return time_machine


@pytest.fixture
def capture(django_capture_on_commit_callbacks):
    return django_capture_on_commit_callbacks


@pytest.fixture
def pro(org):
    organization_change_plan(org=org, plan_code="pro", source="test")
    return org


def make_webhook(org, receiver, *, name="ops hook", path="/hook", **fields):
    channel, _ = channel_services.channel_create(
        org=org,
        kind="webhook",
        name=name,
        config={"url": receiver.url(path), "secret": WEBHOOK_SECRET},
        **fields,
    )
    return channel


def make_email(org, *, name="ops mail", to=("ops@example.com",), **fields):
    channel, _ = channel_services.channel_create(
        org=org, kind="email", name=name, config={"to": list(to)}, **fields
    )
    return channel
