"""Log retention: each plan keeps lines for its `log_retention_days`; the daily task deletes
the older ones and nothing else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.plans.models import Limit
from apps.plans.services import limit_override_set
from apps.telemetry.models import LogLine
from apps.telemetry.tasks import prune_old_logs

pytestmark = pytest.mark.django_db


def _line(org, age: timedelta, message: str) -> None:
    LogLine.objects.create(
        organization=org, ts=timezone.now() - age, source="api", level="info", message=message
    )


def test_lines_past_the_plans_log_retention_are_deleted(org, other_org):
    # free plan: 3 days; the other organization has an operator's exception: unlimited
    limit_override_set(org=other_org, limit=Limit.LOG_RETENTION_DAYS, value=None, reason="test")
    _line(org, timedelta(days=2), "recent")
    _line(org, timedelta(days=4), "old")
    _line(other_org, timedelta(days=400), "kept forever")
    assert prune_old_logs() == 1
    assert sorted(LogLine.objects.values_list("message", flat=True)) == ["kept forever", "recent"]


def test_search_no_longer_finds_pruned_lines(org, key_client):
    _line(org, timedelta(days=10), "ancient timeout")
    _line(org, timedelta(hours=1), "fresh timeout")
    prune_old_logs()
    found = key_client(org).get("/api/v1/logs", {"q": "timeout"}).json()["results"]
    assert [row["message"] for row in found] == ["fresh timeout"]
