"""Healing policy writes (plan gates, encrypted action secrets, audit) and the per-process
memo of which organizations have a policy at all."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.db import transaction

from apps.audit import services as audit
from apps.core import crypto
from apps.core.errors import FieldErrors
from apps.healing.actions import REGISTRY
from apps.healing.api.serializers import HealingPolicyInput
from apps.healing.models import (
    HealingPolicy,
)
from apps.plans.services import require_feature
from apps.tenants.models import Organization

logger = logging.getLogger(__name__)

# --- policies -------------------------------------------------------------------------------


def _clean_action(kind: str, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    if kind not in REGISTRY:
        raise FieldErrors({"action_kind": [f"Unknown action kind {kind!r}."]})
    return REGISTRY.clean(kind, config, field="action_config")


def policy_secrets(policy: HealingPolicy) -> dict[str, Any]:
    return crypto.decrypt_json(policy.action_secret)


def _gate(org: Organization, data: dict[str, Any]) -> None:
    if data.get("auto"):
        require_feature(org=org, feature="auto_orchestration")
    if data.get("use_anomaly"):
        require_feature(org=org, feature="ml_healing")


def policy_create_from(*, org: Organization, data: Any) -> tuple[HealingPolicy, dict]:
    """`policy_create` from a document's raw mapping, validated as the API validates a policy
    (FieldErrors naming each field otherwise): for imports that are not requests."""
    valid = HealingPolicyInput(data=data if isinstance(data, dict) else None, context={"org": org})
    if not valid.is_valid():
        raise FieldErrors(valid.errors)
    return policy_create(org=org, data=dict(valid.validated_data))


def policy_create(*, org: Organization, data: dict[str, Any]) -> tuple[HealingPolicy, dict]:
    """Create a policy; returns it with the action's secret half, which the caller shows once.
    402 when `auto` lacks auto_orchestration or `use_anomaly` lacks ml_healing."""
    data = dict(data)
    _gate(org, data)
    public, secret = _clean_action(data["action_kind"], data.pop("action_config", None) or {})
    with transaction.atomic():
        policy = HealingPolicy.objects.create(
            organization=org,
            action_config=public,
            action_secret=crypto.encrypt_json(secret),
            **data,
        )
        audit.record(
            org=org, action="healingpolicy.created", target=policy, after=audit.snapshot(policy)
        )
        _policies_changed(org.pk)
    return policy, secret


def policy_update(*, policy: HealingPolicy, data: dict[str, Any]) -> HealingPolicy:
    data = dict(data)
    org = policy.organization
    # Turning automation on (or keeping it on while editing) needs the feature now.
    _gate(org, {k: v for k, v in data.items() if k in ("auto", "use_anomaly")})
    before = audit.snapshot(policy)
    kind = data.get("action_kind", policy.action_kind)
    if "action_config" in data or kind != policy.action_kind:
        config = data.pop("action_config", None)
        if config is None:
            config = {**policy.action_config, **policy_secrets(policy)}
        elif kind == policy.action_kind:
            # Omitted secrets are kept: the API never shows them, so a PATCH cannot resend them.
            kept = crypto.secrets_kept(
                policy.action_secret,
                given=config.keys(),
                secret_fields=REGISTRY[kind].secret_fields,
            )
            config = {**kept, **config}
        public, secret = _clean_action(kind, config)
        policy.action_config = public
        policy.action_secret = crypto.encrypt_json(secret)
    for name, value in data.items():
        setattr(policy, name, value)
    if bool(policy.monitor_id) == bool(policy.tag):
        raise FieldErrors({"tag": ["Give exactly one of monitor or tag."]})
    with transaction.atomic():
        policy.save()
        audit.record(org=org, action="healingpolicy.updated", target=policy, before=before)
        _policies_changed(org.pk)
    return policy


def policy_delete(*, policy: HealingPolicy) -> None:
    org_id = policy.organization_id
    audit.delete_recorded(policy, action="healingpolicy.deleted")
    _policies_changed(org_id)


# {organization id: (monotonic expiry, has an enabled policy)}: the listener runs for every
# opened incident and every further failure, and most organizations have no policy; without
# this, a thousand monitors going down in one batch would cost a thousand policy queries.
# Policy writes in this process clear it; other processes see a new first policy within
# POLICY_PRESENCE_TTL seconds.
POLICY_PRESENCE_TTL = 10.0
_policy_presence: dict[Any, tuple[float, bool]] = {}


def org_has_policies(org_id: Any) -> bool:
    now = time.monotonic()
    cached = _policy_presence.get(org_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    has = HealingPolicy.objects.filter(organization_id=org_id, enabled=True).exists()
    _policy_presence[org_id] = (now + POLICY_PRESENCE_TTL, has)
    return has


def policy_presence_prime(*, changes: list) -> None:
    """Hears monitors.events.status_changes, before incidents open: learn, in
    one query, which organizations of the batch have a policy, so the per-event listener that
    follows costs nothing for a thousand monitors changing at once."""
    now = time.monotonic()
    stale = {
        m.organization_id
        for m, _, _ in changes
        if (cached := _policy_presence.get(m.organization_id)) is None or cached[0] <= now
    }
    if not stale:
        return
    having = set(
        HealingPolicy.objects.filter(organization_id__in=stale, enabled=True)
        .order_by()
        .values_list("organization_id", flat=True)
        .distinct()
    )
    for org_id in stale:
        _policy_presence[org_id] = (now + POLICY_PRESENCE_TTL, org_id in having)


def _policies_changed(org_id: Any) -> None:
    _policy_presence.pop(org_id, None)
    transaction.on_commit(lambda: _policy_presence.pop(org_id, None))
