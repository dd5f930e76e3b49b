"""The database a backup test dumps: two organizations written through the product's services.

Run in a process of its own against the database to back up (`manage.py shell -c`), with
HEALTHORCH_ENCRYPTION_KEYS set to "NEW,OLD": the first organization's secrets are written while
OLD was still the only key, the second's after NEW was put in front of it (a rotation), so the
dump holds secrets under two keys. Prints, as its last line, what the tests check afterwards:
per organization its slug, an API key, and the ids of its monitors, incidents and channels.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.test import override_settings

from apps.alerts.services import channels as channel_services
from apps.healing import services as healing_services
from apps.incidents.opening import incident_create_custom
from apps.monitors import services as monitor_services
from apps.plans.services import organization_change_plan
from apps.tenants import services as tenant_services


def _organization(name: str) -> dict[str, Any]:
    org = tenant_services.organization_create(name=name)
    organization_change_plan(org=org, plan_code="pro", source="test")
    monitors = [
        monitor_services.monitor_create(
            org=org,
            data={"name": f"{name} tcp", "kind": "tcp", "config": {"host": "127.0.0.1", "port": 9}},
        ),
        # The API's serializer splits a DSN's password off into `secret`, as here.
        monitor_services.monitor_create(
            org=org,
            data={
                "name": f"{name} db",
                "kind": "postgres",
                "config": {"dsn": "postgres://app@127.0.0.1:9/app"},
                "secret": f"{name}-dsn-password",
                "paused": True,
            },
        ),
    ]
    # The incident before the channel and the policy: nothing is queued for delivery or healing.
    incident = incident_create_custom(org=org, title=f"{name} is down", severity="error")
    channel, _ = channel_services.channel_create(
        org=org,
        kind="webhook",
        name=f"{name} hook",
        config={"url": "http://127.0.0.1:9/hook", "secret": f"{name}-signing-secret-0123456789"},
    )
    healing_services.policy_create(
        org=org,
        data={
            "name": f"{name} restart",
            "monitor": monitors[0],
            "action_kind": "webhook",
            "action_config": {"url": "http://127.0.0.1:9/restart", "secret": "x" * 20},
        },
    )
    key = tenant_services.api_key_create(org=org, name="backup", scopes=["read", "write"])
    return {
        "slug": org.slug,
        "key": key.secret,
        "monitors": sorted(str(m.pk) for m in monitors),
        "incidents": [str(incident.pk)],
        "channels": [str(channel.pk)],
    }


def build() -> None:
    _new, old = settings.HEALTHORCH_ENCRYPTION_KEYS
    with override_settings(HEALTHORCH_ENCRYPTION_KEYS=[old]):  # before the rotation
        first = _organization("Initech")
    second = _organization("Umbrella")  # after it: NEW encrypts
    print(json.dumps({"old": first, "new": second}))
