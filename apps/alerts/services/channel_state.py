"""What delivery needs from a channel: the config a transport is built with (the public half
plus the decrypted secret half) and the disable a permanent delivery error causes.

Kept apart from channels.py (create, update, delete and the test message, which sends through
delivery) so that delivery does not import channels back; channels.py re-exports these.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from apps.alerts.models import Channel
from apps.alerts.services.escalation import routes_changed
from apps.audit import services as audit
from apps.core import crypto

logger = logging.getLogger(__name__)


def channel_secrets(channel: Channel) -> dict[str, Any]:
    return crypto.decrypt_json(channel.secret)


def channel_full_config(channel: Channel) -> dict[str, Any]:
    """The config a transport needs: public half plus the decrypted secret half."""
    return {**channel.config, **channel_secrets(channel)}


def channel_disable(*, channel_id: Any, reason: str) -> bool:
    """Disable a channel after a permanent delivery error. True if this call disabled it.

    Compare-and-set on `enabled`: two deliveries failing at once record one reason.
    """
    with transaction.atomic():
        done = Channel.objects.filter(pk=channel_id, enabled=True).update(
            enabled=False, disabled_reason=reason[:500]
        )
        if done:
            channel = Channel.objects.only("organization_id", "name").get(pk=channel_id)
            audit.record(
                org=channel.organization_id,
                action="channel.disabled",
                target=channel,
                object_repr=channel.name,
                before={"enabled": True, "disabled_reason": ""},
                after={"enabled": False, "disabled_reason": reason[:500]},
                data={"cause": "permanent delivery error"},
                actor=audit.system_actor("delivery"),
            )
    if done:
        routes_changed()
        logger.warning("channel disabled", extra={"channel": str(channel_id), "reason": reason})
    return bool(done)
