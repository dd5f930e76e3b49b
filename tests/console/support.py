"""Rows for console tests, written straight through the ORM (the console reads them; how they
came to be is the engine's business and tested there)."""

from __future__ import annotations

import itertools
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from apps.alerts.models import Channel, Notification
from apps.incidents.models import Incident
from apps.monitors.models import CheckResult, Monitor, ResultRollup

_seq = itertools.count()


def operator_client() -> Client:
    user = get_user_model().objects.create_superuser(
        f"op{next(_seq)}@example.test", f"op{next(_seq)}@example.test", "pw"
    )
    client = Client()
    client.force_login(user)
    return client


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def monitors(org, count: int, *, status: str = "up", prefix: str = "mon") -> list[Monitor]:
    n = next(_seq)
    return Monitor.objects.bulk_create(
        Monitor(
            organization=org,
            name=f"{prefix}-{n}-{i}",
            slug=f"{prefix}-{n}-{i}",
            kind="http",
            config={"url": "http://127.0.0.1:9/"},
            status=status,
            status_changed_at=timezone.now(),
        )
        for i in range(count)
    )


def results(monitor: Monitor, count: int, *, outcome: str = "up") -> None:
    now = timezone.now()
    CheckResult.objects.bulk_create(
        CheckResult(
            monitor=monitor,
            organization_id=monitor.organization_id,
            checked_at=now - timedelta(seconds=i * 30),
            outcome=outcome,
            response_time_ms=20 + i % 7,
        )
        for i in range(count)
    )


def rollups(monitor: Monitor, *, hours: int = 24, days: int = 90, down_days: int = 0) -> None:
    now = timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = [
        ResultRollup(
            monitor=monitor,
            organization_id=monitor.organization_id,
            granularity="hour",
            bucket_start=hour - timedelta(hours=i),
            total=60,
            up=60,
            latency_count=60,
            latency_sum_ms=60 * (30 + i),
        )
        for i in range(hours)
    ]
    rows += [
        ResultRollup(
            monitor=monitor,
            organization_id=monitor.organization_id,
            granularity="day",
            bucket_start=day - timedelta(days=i),
            total=1440,
            up=0 if i <= down_days else 1440,
            down=1440 if i <= down_days else 0,
        )
        for i in range(1, days)
    ]
    ResultRollup.objects.bulk_create(rows)


def incident(org, *, monitor: Monitor | None = None, severity: str = "critical", **extra):
    now = timezone.now()
    return Incident.objects.create(
        organization=org,
        monitor=monitor,
        rule="service_down",
        title=extra.pop("title", f"{monitor or 'custom'} is down"),
        severity=severity,
        opened_at=now,
        last_seen_at=now,
        **extra,
    )


def notification(org, *, status: str, incident_row: Incident | None = None) -> Notification:
    channel = Channel.objects.filter(organization=org).first() or Channel.objects.create(
        organization=org, name=f"hook-{next(_seq)}", kind="webhook", config={}
    )
    return Notification.objects.create(
        organization=org,
        channel=channel,
        incident=incident_row,
        kind="opened",
        severity="critical",
        status=status,
        idempotency_key=f"k-{next(_seq)}",
    )
