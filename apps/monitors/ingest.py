"""Metric ingestion (`POST /api/v1/metrics`) and metric-threshold monitors."""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from apps.monitors.checkers.base import Outcome
from apps.monitors.configs import METRIC_NAME, METRIC_SOURCE
from apps.monitors.models import MetricSample, Monitor, MonitorKind
from apps.monitors.state import fold_outcomes
from apps.plans.models import Feature, Limit
from apps.plans.services import require_feature, reserve
from apps.tenants.models import Organization

MAX_SAMPLES = 1000
MAX_METRICS_PER_SAMPLE = 100
MAX_FUTURE = timedelta(minutes=5)


def parse_samples(payload: Any, *, now: datetime) -> list[tuple[str, str, float, datetime]]:
    """Validate a request body into (source, name, value, ts) rows, or raise a 400 that names
    the sample's index and field. Nothing is stored unless everything is valid."""
    if isinstance(payload, dict) and "samples" in payload:
        samples, prefix = payload["samples"], "samples"
        if not isinstance(samples, list) or not samples:
            raise serializers.ValidationError({"samples": ["A non-empty list of samples."]})
        if len(samples) > MAX_SAMPLES:
            raise serializers.ValidationError({"samples": [f"At most {MAX_SAMPLES} per request."]})
    elif isinstance(payload, dict):
        samples, prefix = [payload], None
    else:
        raise serializers.ValidationError(
            {"non_field_errors": ['Send a sample or {"samples": [...]}.']}
        )
    rows = []
    for i, sample in enumerate(samples):
        where = f"{prefix}[{i}]." if prefix else ""
        if not isinstance(sample, dict):
            raise serializers.ValidationError({f"{prefix}[{i}]": ["A sample is an object."]})
        unknown = set(sample) - {"source", "metrics", "ts"}
        if unknown:
            raise serializers.ValidationError({f"{where}{sorted(unknown)[0]}": ["Unknown field."]})
        source = sample.get("source")
        if not isinstance(source, str) or not METRIC_SOURCE.match(source):
            raise serializers.ValidationError(
                {f"{where}source": ["Required; [A-Za-z0-9_.:-]{1,64}."]}
            )
        metrics = sample.get("metrics")
        if not isinstance(metrics, dict) or not metrics or len(metrics) > MAX_METRICS_PER_SAMPLE:
            raise serializers.ValidationError(
                {
                    f"{where}metrics": [
                        f"An object of 1-{MAX_METRICS_PER_SAMPLE} name: number pairs."
                    ]
                }
            )
        ts = now
        if sample.get("ts") is not None:
            ts = parse_datetime(sample["ts"]) if isinstance(sample["ts"], str) else None
            if ts is None or ts.tzinfo is None:
                raise serializers.ValidationError({f"{where}ts": ["An ISO 8601 time with a zone."]})
            if ts > now + MAX_FUTURE:
                raise serializers.ValidationError(
                    {f"{where}ts": ["More than 5 minutes in the future."]}
                )
        for name, value in metrics.items():
            if not METRIC_NAME.match(name):
                raise serializers.ValidationError(
                    {f"{where}metrics.{name}": ["Names match [a-z0-9_.]{1,64}."]}
                )
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise serializers.ValidationError({f"{where}metrics.{name}": ["A finite number."]})
            rows.append((source, name, float(value), ts))
    return rows


def samples_ingest(*, org: Organization, payload: Any) -> int:
    """Store the samples (all or nothing), meter them, and evaluate affected metric monitors."""
    require_feature(org=org, feature=Feature.METRICS_INGESTION)
    now = timezone.now()
    rows = parse_samples(payload, now=now)
    return samples_store(org=org, rows=rows, now=now)


def samples_store(
    *, org: Organization, rows: list[tuple[str, str, float, datetime]], now: datetime
) -> int:
    """Store validated (source, name, value, ts) rows, all or nothing, within the plan's
    monthly sample limit (UpgradeRequired past it, nothing stored), and evaluate the metric
    monitors of the series they touch. Callers check the feature and validate the rows."""
    if not rows:
        return 0
    with transaction.atomic():
        MetricSample.objects.bulk_create(
            [
                MetricSample(organization=org, source=s, name=n, value=v, ts=t)
                for s, n, v, t in rows
            ],
            batch_size=1000,
        )
        # Taken last, so the counter row (one per organization and month) stays locked only
        # for the end of the transaction, not while the rows are written.
        reserve(org=org, limit=Limit.METRIC_SAMPLES_PER_MONTH, amount=len(rows))
        evaluate_metric_monitors(org=org, series={(s, n) for s, n, _, _ in rows}, now=now)
    return len(rows)


_OPS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
# The Django lookup matching "does NOT breach", to find where the current breach began.
_NOT_BREACH = {
    ">": lambda t: Q(value__lte=t),
    ">=": lambda t: Q(value__lt=t),
    "<": lambda t: Q(value__gte=t),
    "<=": lambda t: Q(value__gt=t),
    "==": lambda t: ~Q(value=t),
    "!=": lambda t: Q(value=t),
}


@dataclass
class _Observation:
    outcome: str
    checked_at: datetime


def evaluate_metric_monitors(
    *, org: Organization, series: set[tuple[str, str]], now: datetime
) -> None:
    """A monitor is failing once its series has breached the threshold for `for_seconds`
    without interruption; one non-breaching sample ends the breach."""
    if not series:
        return
    monitors = [
        m
        for m in Monitor.objects.for_org(org).filter(kind=MonitorKind.METRIC, paused=False)
        if (m.config.get("source"), m.config.get("metric")) in series
    ]
    folds, observations = [], []
    for m in monitors:
        cfg = m.config
        samples = MetricSample.objects.for_org(org).filter(source=cfg["source"], name=cfg["metric"])
        latest = samples.order_by("-ts").first()
        if latest is None:
            continue
        breaching = _OPS[cfg["operator"]](latest.value, cfg["threshold"])
        if not breaching:
            outcome = Outcome.UP
        else:
            calm = (
                samples.filter(_NOT_BREACH[cfg["operator"]](cfg["threshold"]))
                .order_by("-ts")
                .first()
            )
            run = samples.filter(ts__gt=calm.ts) if calm else samples
            started = run.order_by("ts").values_list("ts", flat=True).first()
            lasted = (latest.ts - started).total_seconds()
            if lasted < cfg.get("for_seconds", 0):
                continue  # breaching, but not for long enough yet
            outcome = Outcome.DOWN
        for _ in range(m.failure_threshold if outcome == Outcome.DOWN else 1):
            folds.append(m)
            observations.append(_Observation(outcome, now))
    if folds:
        fold_outcomes(monitors=folds, results=observations)
