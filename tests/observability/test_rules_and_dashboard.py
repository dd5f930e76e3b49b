"""The alerting rules and the Grafana dashboard under docker/observability/ speak of metrics
the code serves, and promtool accepts the rules and passes their unit tests."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from apps.console import metrics as console_metrics
from healthorch import metrics

OBSERVABILITY = Path(__file__).resolve().parents[2] / "docker" / "observability"
RULES = OBSERVABILITY / "alerts.yml"
RULE_TESTS = OBSERVABILITY / "tests" / "alerts_test.yml"
DASHBOARD = OBSERVABILITY / "grafana" / "healthorch.json"

_KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "offset", "bool"}
_KEYWORDS |= {"group_left", "group_right", "inf", "nan"}


def _series_names() -> set[str]:
    """Every sample name the code can expose, plus Prometheus' own `up`."""
    names = {"up"}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for family in value.describe():
                base = family.name
                names |= {base, f"{base}_total", f"{base}_bucket", f"{base}_count", f"{base}_sum"}
    return names


def _state_names() -> set[str]:
    return {
        "scheduler_checks_due",
        "scheduler_oldest_due_seconds",
        "notifier_outbox_due",
        "notifier_outbox_oldest_due_seconds",
    }


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (strings, label matchers, ranges, grouping
    clauses and function names left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\b\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y)?\b", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        following = expr[match.end() :].lstrip()[:1]
        word = match.group()
        if following != "(" and word not in _KEYWORDS:
            names.add(word)
    return names


def _rule_exprs() -> list[tuple[str, str]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [(rule["alert"], rule["expr"]) for group in groups for rule in group["rules"]]


def _dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


@pytest.mark.parametrize(
    ("where", "exprs"), [("rules", _rule_exprs), ("dashboard", _dashboard_exprs)]
)
def test_every_expression_reads_metrics_the_code_serves(where, exprs):
    known = _series_names() | _state_names()
    unknown = {f"{title}: {name}" for title, expr in exprs() for name in metric_names(expr) - known}
    assert not unknown, f"{where} read metrics nobody serves: {sorted(unknown)}"


@pytest.mark.django_db
def test_the_state_gauges_listed_here_are_the_ones_beat_serves():
    assert {name for name, _, _ in console_metrics.platform_state()} == _state_names()


def test_the_expression_reader_finds_names_and_skips_the_rest():
    expr = 'sum by (le) (rate(x_bucket{status=~"5.."}[5m])) / on() y_total offset 10m > 0.05'
    assert metric_names(expr) == {"x_bucket", "y_total"}


def test_the_rules_cover_what_operators_must_hear_about():
    alerts = {name for name, _ in _rule_exprs()}
    assert {
        "HealthorchSchedulerLag",
        "HealthorchChecksStalled",
        "HealthorchOutboxBacklog",
        "HealthorchDeadNotifications",
        "HealthorchWorkerDown",
        "HealthorchBeatDown",
        "HealthorchHighErrorRate",
    } <= alerts


def _promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip(
            "PROMTOOL MISSING: the alerting rules were NOT validated. Install Debian's "
            "`prometheus` package (apt-get install prometheus) or run `make rules` in CI."
        )
    return path


def test_promtool_accepts_the_rules():
    result = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_pass_their_promtool_unit_tests():
    result = subprocess.run(
        [_promtool(), "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
