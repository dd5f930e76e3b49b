"""Writes for escalation policies (a paid feature: `escalation_policies`, 402 otherwise)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from apps.alerts.models import Channel, EscalationPolicy, EscalationStep
from apps.alerts.services.escalation import routes_changed
from apps.audit import services as audit
from apps.core.errors import FieldErrors
from apps.incidents.models import Severity
from apps.plans.services import require_feature
from apps.tenants.models import Organization

FEATURE = "escalation_policies"


def _check_severities(*, org: Organization, severities: list[str], exclude: Any = None) -> None:
    """One policy per severity, so which policy governs an incident is never a guess."""
    others = EscalationPolicy.objects.for_org(org).exclude(pk=exclude)
    for other in others:
        taken = set(other.severities) & set(severities)
        if taken:
            raise FieldErrors(
                {"severities": [f"{', '.join(sorted(taken))} already covered by '{other.name}'."]}
            )


def _write_steps(*, org: Organization, policy: EscalationPolicy, steps: list[dict]) -> None:
    wanted = {cid for step in steps for cid in step["channels"]}
    found = set(Channel.objects.for_org(org).filter(pk__in=wanted).values_list("pk", flat=True))
    missing = wanted - found
    if missing:
        # Another tenant's channel id reads exactly like a wrong one: nothing is revealed.
        raise FieldErrors({"steps": [f"Unknown channel {sorted(str(m) for m in missing)[0]}."]})
    policy.steps.all().delete()
    made = EscalationStep.objects.bulk_create(
        EscalationStep(policy=policy, position=i, delay_minutes=step["delay_minutes"])
        for i, step in enumerate(steps)
    )
    through = EscalationStep.channels.through
    through.objects.bulk_create(
        through(escalationstep_id=row.pk, channel_id=cid)
        for row, step in zip(made, steps, strict=True)
        for cid in dict.fromkeys(step["channels"])
    )


def _ordered(severities: list[str]) -> list[str]:
    return [s for s in Severity.values if s in severities]


def _lock_org(org: Organization) -> None:
    # Serialises policy writes of one organization: two requests claiming the same severity
    # at once would otherwise both pass the uniqueness check.
    Organization.objects.select_for_update().filter(pk=org.pk).values_list("pk").first()


def policy_create(*, org: Organization, data: dict[str, Any]) -> EscalationPolicy:
    """Create a policy with its ordered steps, all or nothing."""
    require_feature(org=org, feature=FEATURE)
    with transaction.atomic():
        _lock_org(org)
        severities = _ordered(data["severities"])
        _check_severities(org=org, severities=severities)
        policy = EscalationPolicy.objects.create(
            organization=org,
            name=data["name"],
            severities=severities,
            repeat=data.get("repeat", 0),
            enabled=data.get("enabled", True),
        )
        _write_steps(org=org, policy=policy, steps=data["steps"])
        audit.record(
            org=org,
            action="escalationpolicy.created",
            target=policy,
            after={**audit.snapshot(policy), "steps": data["steps"]},
        )
    routes_changed()
    return policy


def policy_update(*, policy: EscalationPolicy, data: dict[str, Any]) -> EscalationPolicy:
    """Change a policy; `steps`, when given, replaces every step. Open incidents follow the
    new steps from their next due step on."""
    org = policy.organization
    require_feature(org=org, feature=FEATURE)
    before = audit.snapshot(policy)
    with transaction.atomic():
        _lock_org(org)
        if "severities" in data:
            policy.severities = _ordered(data["severities"])
            _check_severities(org=org, severities=policy.severities, exclude=policy.pk)
        for name in ("name", "repeat", "enabled"):
            if name in data:
                setattr(policy, name, data[name])
        policy.save()
        if "steps" in data:
            _write_steps(org=org, policy=policy, steps=data["steps"])
        audit.record(
            org=org,
            action="escalationpolicy.updated",
            target=policy,
            before=before,
            data={"steps_replaced": "steps" in data},
        )
    routes_changed()
    return policy


def policy_delete(*, policy: EscalationPolicy) -> None:
    """Deleting is always allowed (a downgraded organization can still clean up)."""
    audit.delete_recorded(policy, action="escalationpolicy.deleted")
    routes_changed()
