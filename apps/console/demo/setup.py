"""The demo organization's monitors against the demo target's scenarios."""

from __future__ import annotations

from pathlib import Path

from apps.console.demo import certs
from apps.monitors.models import Monitor
from apps.monitors.services import monitor_create
from apps.tenants.models import Organization

TAG = "demo-target"


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
            "name": "payments (recovering)",
            "kind": "http",
            "failure_threshold": 2,
            "config": {"url": f"{base}/recovering"},
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
