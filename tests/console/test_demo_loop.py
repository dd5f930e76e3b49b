"""The demo's whole loop, wired: the demo target serving in this process on 127.0.0.1, the
product's real checks against it, and the real Celery tasks run eagerly (delivery, healing).

An incident of the demo target is delivered to the target's receiver (signature verified), the
healing policy calls the target's restart hook (audited), and the verification check finds
`payments (recovering)` up and resolves its incident. `tests/test_embedded_run.py` sees the
same with `make run`'s real processes.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from apps.alerts.models import Channel
from apps.alerts.services import outbox
from apps.audit.models import AuditEntry
from apps.console.demo import setup
from apps.console.demo.server import DemoTarget
from apps.healing.models import HealingAttempt
from apps.healing.services import attempts as healing_attempts
from apps.incidents.models import Incident
from apps.monitors import engine
from apps.monitors.models import Monitor
from apps.plans.services import organization_change_plan

SECRET = "demo-hook-secret-0123456789"


@pytest.fixture
def target(tmp_path) -> Iterator[DemoTarget]:
    t = DemoTarget(tls_port=None, cert_folder=tmp_path, hook_secret=SECRET).start()
    yield t
    t.stop()


def _deliveries(target: DemoTarget) -> list[dict]:
    with urllib.request.urlopen(f"{target.url}/deliveries.json", timeout=5) as r:  # noqa: S310
        return json.loads(r.read())


@pytest.fixture
def demo(org, target, tmp_path):
    organization_change_plan(org=org, plan_code="pro", source="test", reason="demo")
    setup.ensure_demo_target_monitors(
        org=org, port=target.port, tls_port=None, cert_folder=tmp_path
    )
    created = setup.ensure_demo_loop(org=org, port=target.port, secret=SECRET)
    assert created == [
        "channel",
        "escalation policy",
        "healing policy",
        "status page",
        "maintenance window",
    ]
    return org


@pytest.mark.django_db(transaction=True)
def test_an_incident_is_delivered_and_payments_is_healed_by_the_product(demo, target, eager_tasks):
    org = demo
    names = ("legacy api (down)", setup.HEALED_MONITOR)
    ids = list(Monitor.objects.for_org(org).filter(name__in=names).values_list("pk", flat=True))
    engine.run_monitors(ids)  # the first check; payments is in its scripted down phase

    # The alert webhook reached the target, signed with the demo's secret: the first opened
    # notice at once, the second held for the grouping window and sent when it ends (the
    # flush the worker runs then, run here at that time).
    channel = Channel.objects.get(organization=org, name=setup.CHANNEL)
    first = [d["title"] for d in _deliveries(target) if d["hook"] == "alert"]
    assert len(first) == 1
    hold = timedelta(seconds=settings.ALERTS_GROUP_HOLD_SECONDS + 1)
    with time_machine.travel(timezone.now() + hold):
        outbox.group_flush(channel_id=channel.pk)
    alerts = [d for d in _deliveries(target) if d["hook"] == "alert"]
    opened = {d["title"] for d in alerts if d["event"] == "opened"}
    assert any("legacy api (down)" in t for t in opened)
    assert any(setup.HEALED_MONITOR in t for t in opened)
    assert {d["signature"] for d in alerts} == {"verified"}

    # Healing acted at once: the restart hook was called and the scenario is up again.
    restarts = [d for d in _deliveries(target) if d["hook"] == "restart"]
    assert len(restarts) == 1
    assert restarts[0]["signature"] == "verified"
    assert target.scenarios.describe()[setup.HEALED_SCENARIO]["restarts"] == 1
    attempt = HealingAttempt.objects.get(organization=org)
    assert attempt.status == "succeeded"
    assert attempt.monitor.name == setup.HEALED_MONITOR
    assert AuditEntry.objects.filter(
        organization=org, action="healing.run", object_id=str(attempt.pk)
    ).exists()
    payments = Incident.objects.get(monitor__name=setup.HEALED_MONITOR)
    assert payments.is_open

    # The verification check, VERIFY_AFTER_SECONDS later, finds it up and resolves it.
    due = timezone.now() + timedelta(seconds=setup.VERIFY_AFTER_SECONDS + 1)
    assert healing_attempts.healing_sweep(now=due)["verified"] == 1
    attempt.refresh_from_db()
    assert attempt.verification == "recovered"
    payments.refresh_from_db()
    assert not payments.is_open
    resolved = [d for d in _deliveries(target) if d["event"] == "resolved"]
    assert any(setup.HEALED_MONITOR in d["title"] for d in resolved)
    # legacy api is not covered by the healing policy: still down, still open.
    assert Incident.objects.get(monitor__name="legacy api (down)").is_open


@pytest.mark.django_db
def test_the_target_refuses_a_hook_with_a_bad_signature(target):
    request = urllib.request.Request(  # noqa: S310 - 127.0.0.1 only
        f"{target.url}/restart/{setup.HEALED_SCENARIO}",
        data=b'{"event": "healing"}',
        method="POST",
        headers={"X-Healthorch-Timestamp": "1", "X-Healthorch-Signature": "sha256=00"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)  # noqa: S310
    assert refused.value.code == 401
    assert target.scenarios.describe()[setup.HEALED_SCENARIO]["restarts"] == 0
    assert _deliveries(target)[0]["signature"] == "refused"
    with urllib.request.urlopen(f"{target.url}/deliveries", timeout=5) as r:  # noqa: S310
        page = r.read().decode()
    assert "refused" in page


@pytest.mark.django_db
def test_the_demo_loop_is_made_once_and_stays_the_demo_organizations(
    demo, target, other_org, outsider, client_for, owner
):
    assert setup.ensure_demo_loop(org=demo, port=target.port, secret=SECRET) == []
    # The status page is public, with the demo target's monitors in its sections.
    page = Client().get(f"/status/{setup.STATUS_PAGE_SLUG}/")
    assert page.status_code == 200
    assert b"Storefront" in page.content
    assert b"payments (recovering)" in page.content
    assert Channel.objects.filter(organization=demo).count() == 1
    mine = client_for(owner)
    theirs = client_for(outsider)
    for path, name in (
        ("/api/v1/channels/", setup.CHANNEL),
        ("/api/v1/escalation-policies/", setup.ESCALATION),
        ("/api/v1/healing-policies/", setup.HEALING),
        ("/api/v1/maintenance-windows/", setup.MAINTENANCE),
        ("/api/v1/status-pages/", "Demo shop status"),
    ):
        assert name in json.dumps(mine.get(path).json()), path
        response = theirs.get(path)
        assert response.status_code == 200, path
        assert name not in json.dumps(response.json()), path


@pytest.mark.django_db
def test_bootstrap_demo_prints_what_the_docs_show_and_sets_the_loop_up_once(
    settings, tmp_path, monkeypatch
):
    settings.DEBUG = True
    settings.VAR_DIR = str(tmp_path)
    monkeypatch.setenv("PORT", "8000")
    monkeypatch.setenv("DEMO_TARGET_PORT", "8001")
    monkeypatch.delenv("DEMO_TARGET_TLS_PORT", raising=False)
    printed = []
    for _ in range(2):  # every make run runs it again
        out = StringIO()
        call_command("bootstrap_demo", stdout=out)
        printed.append(out.getvalue())
    assert Channel.objects.filter(name=setup.CHANNEL).count() == 1
    # The URL lines are exactly the docs' sample (the credentials themselves are random).
    root = Path(__file__).resolve().parents[2]
    for doc in ("README.md", "docs/getting-started.md"):
        text = (root / doc).read_text()
        sample = text[text.index("  healthorch demo credentials") :].split("```")[0]
        for line in sample.splitlines():
            if "http" in line:
                assert line in printed[1].splitlines(), (doc, line)
        assert len(sample.strip().splitlines()) == len(printed[1].strip().splitlines()), doc
