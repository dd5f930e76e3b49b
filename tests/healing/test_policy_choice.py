"""Which policy governs a monitor (its own, then tag policies by priority then age), and the
anomaly model reading the ingested metrics a metric monitor watches, not only latency."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.healing import selectors
from apps.healing.services import anomaly_for, policy_create
from apps.monitors.models import MetricSample
from tests.factories import make_monitor

pytestmark = pytest.mark.django_db


def _policy(org, name, **fields):
    policy, _ = policy_create(org=org, data={"name": name, "action_kind": "noop", **fields})
    return policy


def test_a_monitors_own_policy_wins_then_tag_policies_by_priority_then_age(org, other_org):
    web = make_monitor(org, "web", tags=["prod", "eu"])
    _policy(other_org, "theirs", tag="prod", priority=0)  # another tenant's never counts
    older_eu = _policy(org, "eu", tag="eu", priority=5)
    _policy(org, "prod later", tag="prod", priority=5)
    assert selectors.policy_for(monitor=web) == older_eu  # same priority: the older one

    urgent = _policy(org, "prod first", tag="prod", priority=1)
    assert selectors.policy_for(monitor=web) == urgent  # lower priority number first

    own = _policy(org, "web only", monitor=web, priority=9)
    assert selectors.policy_for(monitor=web) == own  # its own policy beats any tag

    own.enabled = False
    own.save(update_fields=["enabled"])
    assert selectors.policy_for(monitor=web) == urgent  # a disabled policy governs nothing


def test_the_anomaly_model_reads_the_metric_a_metric_monitor_watches(org):
    cpu = {"source": "api-1", "metric": "cpu", "operator": ">", "threshold": 95}
    watcher = make_monitor(org, "api cpu", kind="metric", config=cpu)
    now = timezone.now()
    samples = []
    for i in range(3 * 144, 0, -1):  # three days every 10 minutes, flat around 30 %
        at = now - timedelta(minutes=10 * i)
        value = 30 + (i % 5) + (40 if i <= 3 else 0)  # the last half hour jumps to ~70 %
        samples.append(
            MetricSample(organization=org, source="api-1", name="cpu", value=value, ts=at)
        )
    MetricSample.objects.bulk_create(samples)

    verdict = anomaly_for(monitor=watcher, now=now)

    assert verdict.anomalous, verdict.reason
    assert verdict.kind == "metric_step"
