"""A services file, imported whole: monitors with their tags, and the alert rules, channels and
healing policies that go with them (`manage.py import_services`).

    {"check_interval_seconds": 60, "timeout_seconds": 10, "max_consecutive_failures": 3,
     "services": [{"name": "payments", "url": "https://pay.example.com/health",
                   "critical": true, "expected_response_time": 2.0, "tags": ["prod"]}],
     "alert_rules": {"low_uptime": {"threshold": 99.5, "window_seconds": 86400},
                     "flapping": {"enabled": false}},
     "alerting": {"channels": [{"kind": "email", "name": "on-call",
                                "config": {"to": ["oncall@example.com"]}}]},
     "self_healing": {"policies": [{"name": "restart payments", "service": "payments",
                                    "action_kind": "webhook",
                                    "action_config": {"url": "https://ops.example.com/restart"}}]}}

Each section is validated exactly as the API validates it (the same input serializers and the
same services write it), and errors name their place in the file (`alerting.channels[0].kind`).
A healing policy names its monitor by the service's `name` (`service`) or takes a `tag`.
All or nothing: the monitors are created first inside one transaction, so policies can refer to
them, and any error in any section rolls everything back.

This lives on the console's floor because it writes into four apps; each app's own module
stays ignorant of the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils.text import slugify
from rest_framework import serializers

from apps.alerts.services.channels import channel_create_from
from apps.core.errors import FieldErrors
from apps.healing.services import policy_create_from
from apps.incidents.services import alert_rule_set
from apps.monitors import config_as_code
from apps.monitors.models import Monitor
from apps.tenants.models import Organization

SECTIONS = ("alert_rules", "alerting", "self_healing")


@dataclass
class Imported:
    monitors: list[Monitor] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _errors_under(prefix: str, errors: Any) -> dict[str, Any]:
    if isinstance(errors, dict):
        return {f"{prefix}.{key}": value for key, value in errors.items()}
    return {prefix: errors}


def _mapping(doc: dict, key: str, errors: dict) -> dict:
    value = doc.get(key, {})
    if not isinstance(value, dict):
        errors[key] = ["Expected a mapping."]
        return {}
    return value


def _list(section: dict, key: str, where: str, errors: dict) -> list:
    value = section.get(key, [])
    if not isinstance(value, list):
        errors[f"{where}.{key}"] = ["Expected a list."]
        return []
    return value


def _rules(org: Organization, section: dict, errors: dict, done: Imported) -> None:
    for kind, settings in section.items():
        try:
            alert_rule_set(org=org, kind=kind, data=settings)
        except FieldErrors as exc:
            # An unknown kind is about the key itself; anything else about a setting under it.
            unknown = exc.fields.get("kind")
            errors.update(
                {f"alert_rules.{kind}": unknown}
                if unknown
                else _errors_under(f"alert_rules.{kind}", exc.fields)
            )
            continue
        done.rules.append(kind)


def _items(section: dict, list_key: str, where: str, errors: dict, done: Imported):
    """(place in the file, item) for each item of `section[list_key]`; other keys of the
    section are warned about and ignored."""
    unknown = sorted(set(section) - {list_key}, key=str)
    done.warnings += [f"{where}: ignoring unknown key '{key}'" for key in unknown]
    for i, item in enumerate(_list(section, list_key, where, errors)):
        yield f"{where}.{list_key}[{i}]", item


def _create_each(items, create: Callable[[Any], str], errors: dict) -> list[str]:
    """The names of what `create` made of each item; its refusals go into `errors` under the
    item's place."""
    made = []
    for where, item in items:
        try:
            made.append(create(item))
        except FieldErrors as exc:
            errors.update(_errors_under(where, exc.fields))
    return made


def _naming_the_monitor(item: Any, by_name: dict[str, Monitor]) -> Any:
    """A policy item with `service` (a name in this file) turned into the API's `monitor`."""
    if not isinstance(item, dict) or "service" not in item:
        return item
    item = dict(item)
    service = item.pop("service")
    monitor = by_name.get(slugify(str(service)))
    if monitor is None:
        raise FieldErrors({"service": [f"No service named {service!r} in this file."]})
    return {**item, "monitor": str(monitor.pk)}


@transaction.atomic
def services_file_import(*, org: Organization, doc: Any) -> Imported:
    """Create everything the file describes, or nothing (ValidationError naming each place)."""
    if not isinstance(doc, dict):
        raise serializers.ValidationError({"document": ['Expected a mapping with "services".']})
    monitors_doc = {key: value for key, value in doc.items() if key not in SECTIONS}
    created = config_as_code.services_import(org=org, doc=monitors_doc)
    done = Imported(monitors=created.created, warnings=list(created.warnings))
    errors: dict[str, Any] = {}
    _rules(org, _mapping(doc, "alert_rules", errors), errors, done)
    done.channels = _create_each(
        _items(_mapping(doc, "alerting", errors), "channels", "alerting", errors, done),
        lambda item: channel_create_from(org=org, data=item)[0].name,
        errors,
    )
    by_name = {m.slug: m for m in created.created}
    done.policies = _create_each(
        _items(_mapping(doc, "self_healing", errors), "policies", "self_healing", errors, done),
        lambda item: policy_create_from(org=org, data=_naming_the_monitor(item, by_name))[0].name,
        errors,
    )
    if errors:
        raise serializers.ValidationError(errors)
    return done
