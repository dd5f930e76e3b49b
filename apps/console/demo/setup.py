"""The demo organization's monitors against the demo target's scenarios, and the rest of the
loop around them: an alert webhook to the target's receiver, an escalation policy, a healing
policy whose restart hook the target honours, a status page and a recurring maintenance
window. Everything is made through the apps' services, once, by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apps.alerts.models import Channel, EscalationPolicy
from apps.alerts.services import channels as channel_services
from apps.alerts.services import policies as escalation_services
from apps.console.demo import certs
from apps.healing.models import HealingPolicy
from apps.healing.services import policies as healing_services
from apps.incidents.models import MaintenanceWindow
from apps.incidents.services import configuration as incident_services
from apps.monitors.models import Monitor
from apps.monitors.services import monitor_create
from apps.statuspages import services as statuspage_services
from apps.statuspages.models import StatusPage
from apps.tenants.models import Organization

TAG = "demo-target"
# The names and times the docs describe (README.md, docs/getting-started.md); the demo's
# tests read them from here.
CHANNEL = "demo receiver"
ESCALATION = "demo on-call"
ESCALATE_AFTER_MINUTES = 10
HEALING = "restart payments"
HEALED_MONITOR = "payments (recovering)"
HEALED_SCENARIO = "recovering"
VERIFY_AFTER_SECONDS = 30
HEALING_COOLDOWN_MINUTES = 2
STATUS_PAGE_SLUG = "demo"
MAINTENANCE = "search deploys"
MAINTENANCE_MONITOR = "search (flaky)"
MAINTENANCE_CRON = "*/15 * * * *"
MAINTENANCE_MINUTES = 3


def demo_target_monitor_specs(*, port: int, tls_port: int | None, ca_pem: str) -> list[dict]:
    base = f"http://127.0.0.1:{port}/s"
    every = {"interval_seconds": 60, "tags": [TAG]}
    specs = [
        {"name": "shop (healthy)", "kind": "http", "config": {"url": f"{base}/healthy"}},
        {
            "name": "search (flaky)",
            "kind": "http",
            "failure_threshold": 2,
            "config": {"url": f"{base}/flaky"},
        },
        {
            "name": "reports (slow)",
            "kind": "http",
            "expected_response_time_ms": 800,
            "config": {"url": f"{base}/slow"},
        },
        {
            "name": "legacy api (down)",
            "kind": "http",
            "failure_threshold": 1,  # an incident at the first check: the demo shows one at once
            "config": {"url": f"{base}/down"},
        },
        {
            "name": HEALED_MONITOR,
            "kind": "http",
            # an incident at the first failed check, so healing is seen in the first minutes
            "failure_threshold": 1,
            "config": {"url": f"{base}/{HEALED_SCENARIO}"},
        },
        {
            "name": "host cpu",
            "kind": "metric",
            "config": {
                "source": "demo-target",
                "metric": "cpu",
                "operator": ">",
                "threshold": 90,
                "for_seconds": 30,
            },
        },
    ]
    if tls_port:
        specs.append(
            {
                "name": "shop certificate",
                "kind": "tls",
                "config": {
                    "host": "127.0.0.1",
                    "port": tls_port,
                    "expiry_warning_days": 14,
                    "ca_pem": ca_pem,
                },
            }
        )
    return [{**every, **spec} for spec in specs]


def ensure_demo_target_monitors(
    *, org: Organization, port: int, tls_port: int | None, cert_folder: Path
) -> int:
    """Create the monitors that are missing (by name); returns how many were created."""
    existing = set(Monitor.objects.for_org(org).values_list("name", flat=True))
    created = 0
    for spec in demo_target_monitor_specs(
        port=port, tls_port=tls_port, ca_pem=certs.ca_pem(cert_folder)
    ):
        if spec["name"] not in existing:
            monitor_create(org=org, data=spec)
            created += 1
    return created


def demo_loop_specs(*, port: int, secret: str) -> dict[str, Any]:
    """What `ensure_demo_loop` creates, as the services take it (monitors by name)."""
    base = f"http://127.0.0.1:{port}"
    return {
        "channel": {
            "kind": "webhook",
            "name": CHANNEL,
            "config": {"url": f"{base}/hooks/alerts", "secret": secret},
        },
        "escalation": {
            "name": ESCALATION,
            "severities": ["info", "warning", "error", "critical"],
            # at once, then again if nobody acknowledged within ESCALATE_AFTER_MINUTES
            "steps": [
                {"delay_minutes": 0, "channels": [CHANNEL]},
                {"delay_minutes": ESCALATE_AFTER_MINUTES, "channels": [CHANNEL]},
            ],
        },
        "healing": {
            "name": HEALING,
            "monitor": HEALED_MONITOR,
            "action_kind": "webhook",
            "action_config": {"url": f"{base}/restart/{HEALED_SCENARIO}", "secret": secret},
            "rules": ["http_5xx", "timeout", "connection"],
            "auto": True,
            "cooldown_minutes": HEALING_COOLDOWN_MINUTES,
            "verify_after_seconds": VERIFY_AFTER_SECONDS,
        },
        "status_page": {
            "name": "Demo shop status",
            "slug": STATUS_PAGE_SLUG,
            "description": "The demo organization's public status page.",
            "sections": {
                "Storefront": ["shop (healthy)", "payments (recovering)", "search (flaky)"],
                "Back office": ["reports (slow)", "legacy api (down)"],
            },
        },
        "maintenance": {
            "name": MAINTENANCE,
            "kind": "maintenance",
            "recurrence": "cron",
            "cron": MAINTENANCE_CRON,
            "duration_minutes": MAINTENANCE_MINUTES,
            "timezone": "UTC",
            "monitors": [MAINTENANCE_MONITOR],
        },
    }


def ensure_demo_loop(*, org: Organization, port: int, secret: str) -> list[str]:
    """Create what is missing (by name) of the loop around the demo target's monitors; returns
    what was created. Needs the demo target's monitors (ensure_demo_target_monitors)."""
    specs = demo_loop_specs(port=port, secret=secret)
    monitors = {m.name: m for m in Monitor.objects.for_org(org)}
    created: list[str] = []

    spec = specs["channel"]
    channel = Channel.objects.for_org(org).filter(name=spec["name"]).first()
    if channel is None:
        channel, _ = channel_services.channel_create(org=org, **spec)
        created.append("channel")

    spec = specs["escalation"]
    if not EscalationPolicy.objects.for_org(org).filter(name=spec["name"]).exists():
        steps = [
            {"delay_minutes": step["delay_minutes"], "channels": [channel.pk]}
            for step in spec["steps"]
        ]
        escalation_services.policy_create(org=org, data={**spec, "steps": steps})
        created.append("escalation policy")

    spec = specs["healing"]
    if not HealingPolicy.objects.for_org(org).filter(name=spec["name"]).exists():
        healing_services.policy_create(org=org, data={**spec, "monitor": monitors[spec["monitor"]]})
        created.append("healing policy")

    spec = specs["status_page"]
    if not StatusPage.objects.filter(slug=spec["slug"]).exists():
        sections = spec["sections"]
        page = statuspage_services.status_page_create(
            org=org, data={k: v for k, v in spec.items() if k != "sections"}
        )
        for position, (name, names) in enumerate(sections.items()):
            statuspage_services.section_create(
                org=org,
                data={
                    "page": page.pk,
                    "name": name,
                    "position": position,
                    "monitors": [{"monitor": monitors[n].pk} for n in names],
                },
            )
        created.append("status page")

    spec = specs["maintenance"]
    if not MaintenanceWindow.objects.for_org(org).filter(name=spec["name"]).exists():
        incident_services.window_create(
            org=org, data={**spec, "monitors": [monitors[n] for n in spec["monitors"]]}
        )
        created.append("maintenance window")
    return created
