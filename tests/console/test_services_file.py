"""`manage.py import_services` with a whole services file: monitors with their tags, alert
rules, channels and healing policies, validated as the API validates them, all or nothing."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps.alerts.models import Channel
from apps.healing.models import HealingPolicy
from apps.incidents.models import AlertRule
from apps.monitors.models import Monitor
from apps.plans.services import organization_change_plan

pytestmark = pytest.mark.django_db


def services_file(tmp_path, **sections) -> str:
    doc = {
        "check_interval_seconds": 300,
        "services": [
            {"name": "Payments", "url": "http://127.0.0.1:9/health", "tags": ["prod", "pay"]},
            {"name": "web", "url": "http://127.0.0.1:8080/"},
        ],
        "alert_rules": {
            "low_uptime": {"threshold": 99.5, "window_seconds": 7200},
            "flapping": {"enabled": False},
        },
        "alerting": {
            "channels": [
                {"kind": "email", "name": "on-call", "config": {"to": ["oncall@example.test"]}},
                {
                    "kind": "webhook",
                    "name": "ops hook",
                    "config": {
                        "url": "http://127.0.0.1:9/hook",
                        "secret": "s3cret-value-0123456789",
                    },
                    "severities": ["critical"],
                },
            ]
        },
        "self_healing": {
            "policies": [
                {
                    "name": "restart payments",
                    "service": "Payments",
                    "action_kind": "webhook",
                    "action_config": {"url": "http://127.0.0.1:9/restart"},
                },
                {"name": "noop on prod", "tag": "prod", "action_kind": "noop"},
            ]
        },
    }
    doc.update(sections)
    path = tmp_path / "services.json"
    path.write_text(json.dumps(doc))
    return str(path)


def run(path: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("import_services", path, "--org", "acme", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_every_section_becomes_the_matching_objects(org, tmp_path):
    out, err = run(services_file(tmp_path))

    payments = Monitor.objects.get(organization=org, slug="payments")
    assert payments.tags == ["prod", "pay"]
    rules = {r.kind: r for r in AlertRule.objects.for_org(org)}
    assert (rules["low_uptime"].threshold, rules["low_uptime"].window_seconds) == (99.5, 7200)
    assert rules["flapping"].enabled is False
    assert rules["service_down"].enabled is True  # untouched: the default
    hook = Channel.objects.get(organization=org, name="ops hook")
    assert (hook.kind, hook.severities) == ("webhook", ["critical"])
    assert "s3cret-value" not in hook.secret  # encrypted like any channel secret
    restart = HealingPolicy.objects.get(organization=org, name="restart payments")
    assert (restart.monitor, restart.action_kind) == (payments, "webhook")
    assert HealingPolicy.objects.get(organization=org, name="noop on prod").tag == "prod"
    assert out.splitlines()[-1] == (
        "created 2 monitors, 2 channels and 2 healing policies in acme; 2 alert rules changed"
    )
    assert err == ""


@pytest.mark.parametrize(
    ("section", "value", "line"),
    [
        ("alert_rules", {"low_uptime": {"threshold": 120}}, "alert_rules.low_uptime.threshold:"),
        ("alert_rules", {"loud_noises": {}}, "alert_rules.loud_noises: Unknown rule"),
        (
            "alerting",
            {"channels": [{"kind": "pager", "name": "x", "config": {}}]},
            "alerting.channels[0].kind:",
        ),
        (
            "alerting",
            {"channels": [{"kind": "webhook", "name": "x", "config": {"url": "ftp://h/"}}]},
            "alerting.channels[0].config.url:",
        ),
        (
            "self_healing",
            {"policies": [{"name": "p", "service": "nope", "action_kind": "noop"}]},
            "self_healing.policies[0].service: No service named 'nope' in this file.",
        ),
        ("self_healing", {"policies": "all of them"}, "self_healing.policies: Expected a list."),
    ],
)
def test_an_error_anywhere_is_named_and_nothing_is_created(org, tmp_path, section, value, line):
    err = StringIO()
    with pytest.raises(CommandError, match="nothing was created"):
        call_command(
            "import_services",
            services_file(tmp_path, **{section: value}),
            "--org",
            "acme",
            stdout=StringIO(),
            stderr=err,
        )
    assert any(x.startswith(line) for x in err.getvalue().splitlines()), err.getvalue()
    assert not Monitor.objects.exists()
    assert not Channel.objects.exists()
    assert not HealingPolicy.objects.exists()
    assert not AlertRule.objects.filter(organization=org, enabled=False).exists()


def test_a_section_the_plan_does_not_include_is_refused_and_nothing_is_created(org, tmp_path):
    apprise = {"kind": "apprise", "name": "chat", "config": {"url": "ntfy://127.0.0.1/topic"}}
    path = services_file(tmp_path, alerting={"channels": [apprise]})

    with pytest.raises(CommandError, match="Upgrade required"):
        run(path)  # the free plan has no integrations
    assert not Monitor.objects.exists()

    organization_change_plan(org=org, plan_code="pro", source="test")
    run(path)
    assert Channel.objects.get(organization=org).kind == "apprise"


def test_the_other_organization_gets_nothing(org, other_org, tmp_path):
    run(services_file(tmp_path))
    assert not Monitor.objects.filter(organization=other_org).exists()
    assert not Channel.objects.filter(organization=other_org).exists()
    assert not HealingPolicy.objects.filter(organization=other_org).exists()
