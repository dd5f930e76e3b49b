"""Writes for channels: create, update, delete, test, and the disable that a permanent error
causes (that one, with the full config, lives in channel_state.py, which delivery uses too).
Secrets (a webhook's signing secret, an Apprise URL) are stored Fernet-encrypted and only ever
returned by `channel_create`, once."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from apps.alerts.api.serializers import ChannelInput
from apps.alerts.channels import REGISTRY
from apps.alerts.models import KIND_FEATURES, Channel
from apps.alerts.services.channel_state import channel_disable as channel_disable  # re-export
from apps.alerts.services.channel_state import channel_full_config as channel_full_config
from apps.alerts.services.channel_state import channel_secrets as channel_secrets  # re-export
from apps.alerts.services.delivery import deliver_test
from apps.alerts.services.escalation import routes_changed
from apps.audit import services as audit
from apps.core import crypto
from apps.core.errors import FieldErrors
from apps.incidents.models import Severity
from apps.plans.services import require_feature
from apps.tenants.models import Organization

logger = logging.getLogger(__name__)


def _clean(kind: str, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return REGISTRY.clean(kind, config, field="config")


def _severities(value: list[str] | None) -> list[str]:
    if value is None:
        return list(Severity.values)
    # Stored in severity order, once each, so equality and display are stable.
    return [s for s in Severity.values if s in value]


def channel_create(
    *,
    org: Organization,
    kind: str,
    name: str,
    config: dict[str, Any],
    enabled: bool = True,
    notify_on_resolved: bool = True,
    severities: list[str] | None = None,
) -> tuple[Channel, dict[str, Any]]:
    """Create a channel; returns it with its secret half, which the caller shows once.

    Raises UpgradeRequired (402) when the plan lacks the kind's feature and a field-level
    ValidationError (400) for a bad config.
    """
    require_feature(org=org, feature=KIND_FEATURES[kind])
    public, secret = _clean(kind, config)
    with transaction.atomic():
        channel = Channel.objects.create(
            organization=org,
            kind=kind,
            name=name,
            config=public,
            secret=crypto.encrypt_json(secret),
            enabled=enabled,
            notify_on_resolved=notify_on_resolved,
            severities=_severities(severities),
        )
        audit.record(
            org=org, action="channel.created", target=channel, after=audit.snapshot(channel)
        )
    routes_changed()
    logger.info(
        "channel created", extra={"org": org.slug, "channel": str(channel.pk), "kind": kind}
    )
    return channel, secret


def channel_create_from(*, org: Organization, data: Any) -> tuple[Channel, dict[str, Any]]:
    """`channel_create` from a document's raw mapping, validated as the API validates a
    channel (FieldErrors naming each field otherwise): for imports that are not requests."""
    valid = ChannelInput(data=data if isinstance(data, dict) else None)
    if not valid.is_valid():
        raise FieldErrors(valid.errors)
    return channel_create(org=org, **valid.validated_data)


def channel_update(*, channel: Channel, data: dict[str, Any]) -> Channel:
    """Change a channel. A new `config` replaces the old one, except that secret fields left
    out keep their stored values (they were never shown, so the caller cannot resend them).
    Re-enabling a channel that a permanent error disabled clears the reason."""
    fields = ["updated_at"]
    before = audit.snapshot(channel)
    if data.get("enabled") or "config" in data:
        # Turning on (or reconfiguring) a kind the plan no longer includes is an upgrade.
        require_feature(org=channel.organization, feature=KIND_FEATURES[channel.kind])
    if "config" in data:
        stored = crypto.secrets_kept(
            channel.secret,
            given=data["config"].keys(),
            secret_fields=REGISTRY[channel.kind].secret_fields,
        )
        merged = {**stored, **data["config"]}
        public, secret = _clean(channel.kind, merged)
        channel.config = public
        channel.secret = crypto.encrypt_json(secret)
        fields += ["config", "secret"]
    for name in ("name", "notify_on_resolved"):
        if name in data:
            setattr(channel, name, data[name])
            fields.append(name)
    if "severities" in data:
        channel.severities = _severities(data["severities"])
        fields.append("severities")
    if "enabled" in data:
        channel.enabled = data["enabled"]
        if channel.enabled:
            channel.disabled_reason = ""
        fields += ["enabled", "disabled_reason"]
    with transaction.atomic():
        channel.save(update_fields=fields)
        audit.record(
            org=channel.organization_id, action="channel.updated", target=channel, before=before
        )
    routes_changed()
    return channel


def channel_delete(*, channel: Channel) -> None:
    audit.delete_recorded(channel, action="channel.deleted")
    routes_changed()


def channel_test(*, channel: Channel):
    """Send a test message now, record it in the delivery log, and return the Notification.

    Test messages are not counted against the monthly cap, are not retried and never disable
    the channel (the person testing is looking at the answer).
    """
    require_feature(org=channel.organization, feature=KIND_FEATURES[channel.kind])
    sent = deliver_test(channel=channel)
    audit.record(
        org=channel.organization_id,
        action="channel.tested",
        target=channel,
        data={"notification": sent.pk, "status": sent.status},
    )
    return sent


def apply_plan_features(*, org: Organization, old_plan: Any, new_plan: Any) -> dict[str, Any]:
    """Plan-change handler: channels whose kind the new plan lacks are disabled (kept, with
    the reason, so an upgrade and a click bring them back). Upgrades change nothing."""
    features = set(new_plan.features or [])
    locked = [kind for kind, feature in KIND_FEATURES.items() if feature not in features]
    channels = Channel.objects.for_org(org).filter(kind__in=locked, enabled=True)
    found = list(channels.values_list("pk", "name", "disabled_reason"))
    ids = [str(pk) for pk, _, _ in found]
    if ids:
        routes_changed()
        reason = f"plan {new_plan.code} does not include this channel kind"
        channels.update(enabled=False, disabled_reason=reason)
        # Recorded as the system's doing (the plan's rule), in the plan change's transaction.
        audit.record_many(
            org=org,
            action="channel.disabled",
            objects=[
                {
                    "object_type": "channel",
                    "object_id": pk,
                    "object_repr": name,
                    "before": {"enabled": True, "disabled_reason": old},
                    "after": {"enabled": False, "disabled_reason": reason},
                }
                for pk, name, old in found
            ],
            data={"cause": "plan.changed", "plan": new_plan.code},
            actor=audit.SYSTEM,
        )
    return {"disabled_channels": ids} if ids else {}
