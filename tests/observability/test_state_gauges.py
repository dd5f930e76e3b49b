"""Beat's /metrics carries the platform's backlogs, read from the database at scrape time:
checks due and not claimed, notifications due and not delivered."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import generate_latest

from apps.alerts.models import Notification, NotificationStatus
from apps.alerts.services import channels as channel_services
from apps.alerts.services import outbox
from apps.monitors.models import Monitor
from apps.monitors.schedule import schedule_set
from healthorch import metrics
from tests.alerts.support import open_incident
from tests.observability.scrape import total

pytestmark = pytest.mark.django_db(transaction=True)


def _state() -> str:
    return generate_latest(metrics.metrics_registry(state=True)).decode()


def _late_notification(org, monkeypatch, late: timedelta) -> Notification:
    # The delivery task it would enqueue is not wanted: nothing consumes the broker here.
    monkeypatch.setattr(outbox, "_send", lambda *args, **kwargs: None)
    channel_services.channel_create(
        org=org, kind="webhook", name="hook", config={"url": "http://127.0.0.1:9/hook"}
    )
    incident = open_incident(lambda execute=True: nullcontext(), org)
    notification = Notification.objects.get(incident=incident)
    Notification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now() - late)
    return notification


def test_an_idle_platform_reports_empty_backlogs(org):
    text = _state()
    for name in (
        "scheduler_checks_due",
        "scheduler_oldest_due_seconds",
        "notifier_outbox_due",
        "notifier_outbox_oldest_due_seconds",
    ):
        assert total(text, name) == 0, name


def test_late_checks_and_undelivered_notifications_show(org, other_org, monkeypatch):
    for owner in (org, other_org):
        monitor = Monitor.objects.create(
            organization=owner, name="api", slug="api", kind="http", config={"url": "http://x/"}
        )
        schedule_set(monitor, timezone.now() - timedelta(seconds=90))
    late = _late_notification(org, monkeypatch, timedelta(seconds=120))

    text = _state()
    # Platform-wide figures: every organization's backlog counts, none is named.
    assert total(text, "scheduler_checks_due") == 2
    assert total(text, "scheduler_oldest_due_seconds") >= 90
    assert total(text, "notifier_outbox_due") == 1
    assert total(text, "notifier_outbox_oldest_due_seconds") >= 120
    assert org.slug not in text
    assert other_org.slug not in text

    Notification.objects.filter(pk=late.pk).update(status=NotificationStatus.SENT)
    text = _state()
    assert total(text, "notifier_outbox_due") == 0
    assert total(text, "notifier_outbox_oldest_due_seconds") == 0


def test_a_failing_source_leaves_the_scrape_answering(org, monkeypatch):
    from apps.console import metrics as console_metrics

    def database_away(now):
        raise RuntimeError("database away")

    monkeypatch.setattr(console_metrics, "scheduler_lag", database_away)
    text = _state()  # no exception: the scrape answers without the state
    assert "scheduler_checks_due" not in text
    assert "monitor_checks_executed_total" in text


def test_only_beat_serves_the_state():
    worker = generate_latest(metrics.metrics_registry()).decode()
    assert "scheduler_checks_due" not in worker
