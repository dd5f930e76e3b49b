"""What an organization configures for its incidents: alert rules, dependencies, maintenance
windows and silences."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from apps.core.actors import api_key_ref
from apps.core.errors import FieldErrors, ServiceError
from apps.incidents import rules, sweeps
from apps.incidents.api.serializers import AlertRuleInput
from apps.incidents.models import (
    AlertRule,
    MaintenanceWindow,
    MonitorDependency,
    RuleKind,
)
from apps.monitors.models import Monitor
from apps.tenants.models import ApiKey, Organization

# --- Alert rules ------------------------------------------------------------------------------


def alert_rules_ensure(*, org: Organization) -> None:
    """Give the organization one row per rule kind (the defaults), keeping existing rows."""
    have = set(AlertRule.objects.for_org(org).values_list("kind", flat=True))
    missing = [
        AlertRule(
            organization=org,
            kind=kind,
            enabled=rule.enabled,
            threshold=rule.threshold,
            window_seconds=rule.window_seconds,
            severity=rule.severity,
        )
        for kind, rule in rules.DEFAULTS.items()
        if kind not in have
    ]
    if missing:
        AlertRule.objects.bulk_create(missing, ignore_conflicts=True)


def alert_rule_set(*, org: Organization, kind: str, data: Any) -> AlertRule:
    """Change one rule of `org` from a document's raw mapping, validated as the API validates
    it (FieldErrors naming each field, or the kind, otherwise): for imports, not requests."""
    if kind not in RuleKind.values:
        raise FieldErrors({"kind": [f"Unknown rule; one of {', '.join(RuleKind.values)}."]})
    alert_rules_ensure(org=org)
    rule = AlertRule.objects.for_org(org).get(kind=kind)
    valid = AlertRuleInput(data=data if isinstance(data, dict) else None, context={"rule": rule})
    if not valid.is_valid():
        raise FieldErrors(valid.errors)
    return alert_rule_update(rule=rule, data=valid.validated_data)


def alert_rule_update(*, rule: AlertRule, data: dict[str, Any]) -> AlertRule:
    for field, value in data.items():
        setattr(rule, field, value)
    rule.save()
    return rule


# --- Dependencies -----------------------------------------------------------------------------


def dependency_create(
    *, org: Organization, monitor: Monitor, depends_on: Monitor
) -> MonitorDependency:
    """`monitor` depends on `depends_on` (both of `org`). Refuses itself and cycles."""
    if monitor.pk == depends_on.pk:
        raise ServiceError("A monitor cannot depend on itself.", field="depends_on", code="self")
    # Walk up from the parent: reaching the child again would make a cycle.
    seen, frontier = set(), {depends_on.pk}
    while frontier:
        if monitor.pk in frontier:
            raise ServiceError(
                "That would make a dependency cycle.", field="depends_on", code="cycle"
            )
        seen |= frontier
        frontier = (
            set(
                MonitorDependency.objects.for_org(org)
                .filter(monitor_id__in=frontier)
                .values_list("depends_on_id", flat=True)
            )
            - seen
        )
    try:
        with transaction.atomic():
            return MonitorDependency.objects.create(
                organization=org, monitor=monitor, depends_on=depends_on
            )
    except IntegrityError as exc:
        raise ServiceError(
            "This dependency exists already.", field="depends_on", code="exists"
        ) from exc


def dependency_delete(*, dependency: MonitorDependency) -> None:
    dependency.delete()


# --- Maintenance windows ----------------------------------------------------------------------


def window_create(
    *,
    org: Organization,
    data: dict[str, Any],
    user: AbstractBaseUser | None = None,
    api_key: ApiKey | None = None,
) -> MaintenanceWindow:
    """Create a window or silence (by a user or an API key); monitors it covers enter
    maintenance at once if it is in force now (the sweep would within 30 s)."""
    monitors = data.pop("monitors", [])
    with transaction.atomic():
        window = MaintenanceWindow.objects.create(
            organization=org,
            created_by=user,
            created_by_key=api_key_ref(api_key) if user is None else None,
            **data,
        )
        window.monitors.set(monitors)
        sweeps.maintenance_sync(org_ids={org.pk})
    return window


def window_update(*, window: MaintenanceWindow, data: dict[str, Any]) -> MaintenanceWindow:
    monitors = data.pop("monitors", None)
    with transaction.atomic():
        for field, value in data.items():
            setattr(window, field, value)
        window.save()
        if monitors is not None:
            window.monitors.set(monitors)
        sweeps.maintenance_sync(org_ids={window.organization_id})
    return window


def window_delete(*, window: MaintenanceWindow) -> None:
    """Delete a window; monitors it held in maintenance leave it at once."""
    org_id = window.organization_id
    with transaction.atomic():
        window.delete()
        sweeps.maintenance_sync(org_ids={org_id})
