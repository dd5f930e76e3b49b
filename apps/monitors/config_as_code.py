"""Monitors as files: export an organization's monitors as a document, apply one back, and
import a plain list of HTTP services.

A document is `{"version": 1, "monitors": [entry, ...]}`. An entry is exactly what the API
takes to create a monitor (MonitorInput) plus a required `slug`, the key that matches it to a
stored monitor, so a file and an API call are valid or invalid for the same reasons.

Applying is declarative: an entry states the whole monitor, and a field it leaves out means
that field's default, not "keep what is stored". That is what makes applying the same file
twice a no-op, and an exported file an exact description of what is running.

Everything is validated before anything is written; then one transaction runs the writes
through the monitor services, so plan limits, slug rules and SSRF checks are the API's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.core.management.base import CommandError
from django.db import transaction
from django.utils.text import slugify
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from apps.audit import services as audit
from apps.core import crypto
from apps.core.errors import Conflict, ServiceError, UpgradeRequired
from apps.monitors import services
from apps.monitors.api.serializers import MonitorInput
from apps.monitors.models import CHECK_SETTINGS, Monitor, MonitorKind
from apps.plans.models import Limit
from apps.plans.services import require_interval, reserve
from apps.tenants.models import Organization

VERSION = 1

# The order fields appear in an exported entry: identity, what is checked, then how.
ENTRY_FIELDS = ("slug", "name", "kind", "config", *CHECK_SETTINGS)
# slug is the key and kind cannot change, so neither is ever an "update".
_COMPARED = tuple(f for f in ENTRY_FIELDS if f not in {"slug", "kind"})

EXPORT_HEADER = (
    "# healthorch monitors, configuration as code (apply with: manage.py apply_monitors FILE).\n"
    "# Secrets are not exported: postgres and redis passwords stay encrypted on the server, and\n"
    "# a URL applied without a password keeps the stored one. Other settings, HTTP headers\n"
    "# included, are exported as stored: keep this file as private as the API's monitor list.\n"
)

PAUSED_BY_APPLY = "paused by configuration as code"


# --- Export -----------------------------------------------------------------------------------


def _sorted(value: Any) -> Any:
    # jsonb hands keys back in its own order; sorting keeps exports diffable across runs.
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _config_as_input(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    # A file must be valid input, but stored settings are validation's output; the two differ
    # where validation rewrites a value into a form it does not itself accept.
    if kind == MonitorKind.HTTP and isinstance(config.get("expected_status"), list):
        ranges = [lo if lo == hi else f"{lo}-{hi}" for lo, hi in config["expected_status"]]
        config = {**config, "expected_status": ranges}
    return config


def _entry(monitor: Monitor) -> dict[str, Any]:
    entry = {name: getattr(monitor, name) for name in ENTRY_FIELDS}
    entry["config"] = _sorted(_config_as_input(monitor.kind, monitor.config))
    if entry["slo_target_pct"] is not None:  # a Decimal: YAML and JSON write numbers
        entry["slo_target_pct"] = float(entry["slo_target_pct"])
    return entry


def document_export(org: Organization) -> dict[str, Any]:
    monitors = Monitor.objects.for_org(org).order_by("slug")
    return {"version": VERSION, "monitors": [_entry(m) for m in monitors]}


# --- Plan -------------------------------------------------------------------------------------


@dataclass
class Create:
    index: int
    slug: str
    data: dict[str, Any]


@dataclass
class Update:
    index: int
    monitor: Monitor
    changes: dict[str, Any]

    @property
    def slug(self) -> str:
        return self.monitor.slug


@dataclass
class Plan:
    creates: list[Create] = field(default_factory=list)
    updates: list[Update] = field(default_factory=list)
    deletes: list[Monitor] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(self.creates or self.updates or self.deletes)

    def lines(self) -> list[str]:
        return [
            *(f"+ {c.slug}" for c in self.creates),
            *(f"~ {u.slug} ({', '.join(sorted(u.changes))})" for u in self.updates),
            *(f"- {m.slug}" for m in self.deletes),
        ]


@dataclass
class Applied:
    plan: Plan
    dry_run: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": [c.slug for c in self.plan.creates],
            "updated": [u.slug for u in self.plan.updates],
            "deleted": [m.slug for m in self.plan.deletes],
            "unchanged": self.plan.unchanged,
            "dry_run": self.dry_run,
        }


def validate_entry(entry: Any) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(validated data, {}) or (None, errors by field): the API's own validation."""
    if not isinstance(entry, dict):
        return None, {"": ["Expected a mapping of monitor fields."]}
    # YAML reads `slug: 2024` as a number; a document takes such scalars as text.
    serializer = MonitorInput(data=entry, context={"coerce_text": True})
    if not serializer.is_valid():
        return None, dict(serializer.errors)
    data = dict(serializer.validated_data)
    # Declarative: leaving the response-time budget out means having none.
    data.setdefault("expected_response_time_ms", None)
    return data, {}


def _add(errors: dict[str, Any], key: str, message: str) -> None:
    existing = errors.setdefault(key, [])
    if isinstance(existing, list):
        existing.append(message)


def _document_entries(doc: Any) -> tuple[list[Any], dict[str, Any]]:
    if not isinstance(doc, dict):
        return [], {"document": ['Expected a mapping: {"version": 1, "monitors": [...]}.']}
    errors: dict[str, Any] = {
        str(key): ["Unknown field."] for key in sorted(set(doc) - {"version", "monitors"}, key=str)
    }
    if doc.get("version") != VERSION:
        errors["version"] = [f"Required, and only version {VERSION} is understood."]
    entries = doc.get("monitors")
    if not isinstance(entries, list):
        errors["monitors"] = ["Required: a list of monitors (it may be empty)."]
        entries = []
    return entries, errors


def _changes(monitor: Monitor, data: dict[str, Any]) -> dict[str, Any]:
    changes = {name: data[name] for name in _COMPARED if getattr(monitor, name) != data[name]}
    secret = data.get("secret")
    if secret and secret != _stored_secret(monitor):
        changes["secret"] = secret
    return changes


def _stored_secret(monitor: Monitor) -> str | None:
    """The monitor's stored secret; None when its key is missing (the file's secret then
    replaces it, which is how a secret whose key is lost is given again)."""
    try:
        return services.secret_of(monitor)
    except crypto.SecretUnavailable:
        return None


def document_plan(org: Organization, doc: Any, prune: bool = False) -> Plan:
    """What applying `doc` would change, or ValidationError naming `monitors[i].field`."""
    entries, errors = _document_entries(doc)
    existing = {m.slug: m for m in Monitor.objects.for_org(org)}
    first_index: dict[str, int] = {}
    validated: list[tuple[int, dict[str, Any]]] = []
    for i, entry in enumerate(entries):
        where = f"monitors[{i}]"
        data, entry_errors = validate_entry(entry)
        if isinstance(entry, dict) and "slug" not in entry:
            _add(entry_errors, "slug", "Required: the slug is what matches an entry to a monitor.")
        # The validated slug when there is one: `slug: 123` in YAML is the monitor "123".
        slug = data.get("slug") if data is not None else None
        if slug is None and isinstance(entry, dict) and isinstance(entry.get("slug"), str):
            slug = entry["slug"]
        if slug:
            if slug in first_index:
                _add(entry_errors, "slug", f"Also used by monitors[{first_index[slug]}].")
            first_index.setdefault(slug, i)
        current = existing.get(slug) if data is not None else None
        if current is not None and current.kind != data["kind"]:
            _add(
                entry_errors,
                "kind",
                f"'{current.slug}' is a {current.kind} monitor and a kind cannot change: "
                "give the new monitor a new slug (pruning removes the old one).",
            )
        for key, messages in entry_errors.items():
            errors[f"{where}.{key}" if key else where] = messages
        if data is not None and not entry_errors:
            validated.append((i, data))
    if errors:
        raise serializers.ValidationError(errors)

    plan = Plan()
    for i, data in validated:
        current = existing.get(data["slug"])
        if current is None:
            plan.creates.append(Create(index=i, slug=data["slug"], data=data))
        elif changes := _changes(current, data):
            plan.updates.append(Update(index=i, monitor=current, changes=changes))
        else:
            plan.unchanged.append(current.slug)
    if prune:
        plan.deletes = sorted(
            (m for slug, m in existing.items() if slug not in first_index), key=lambda m: m.slug
        )
    return plan


# --- Apply ------------------------------------------------------------------------------------


@contextmanager
def _about(where: str) -> Iterator[None]:
    # A 402's body is fixed by the API, so which entry hit the limit travels as a note that the
    # commands print; the API answer stays exactly the documented one.
    try:
        yield
    except (UpgradeRequired, ServiceError) as exc:
        exc.add_note(where)
        raise


def _execute(org: Organization, plan: Plan) -> None:
    # Row locks in primary-key order, as the result recorder takes them: a check finishing
    # meanwhile waits instead of having its status overwritten by our full-row save.
    ids = sorted(u.monitor.pk for u in plan.updates)
    locked = {
        m.pk: m for m in Monitor.objects.filter(pk__in=ids).order_by("pk").select_for_update()
    }
    # Frees slots first (deletes, pauses), then takes them (resumes, creates), so a file that
    # swaps monitors within the plan's limit never trips over it halfway.
    for monitor in plan.deletes:
        services.monitor_delete(monitor=monitor)
    resumes: list[tuple[Update, Monitor]] = []
    for update in plan.updates:
        monitor = locked.get(update.monitor.pk)
        if monitor is None:
            raise Conflict(f"The monitor '{update.slug}' was deleted meanwhile; apply again.")
        data = dict(update.changes)
        paused = data.pop("paused", None)
        with _about(f"monitors[{update.index}] ({update.slug})"):
            if data:
                services.monitor_update(monitor=monitor, data=data)
            if paused is True:
                services.monitor_pause(monitor=monitor, reason=PAUSED_BY_APPLY)
            elif paused is False:
                resumes.append((update, monitor))
    _reserve(org, len(resumes) + sum(not c.data["paused"] for c in plan.creates))
    for update, monitor in resumes:
        with _about(f"monitors[{update.index}] ({update.slug})"):
            services.monitor_resume(monitor=monitor)
    for create in plan.creates:
        with _about(f"monitors[{create.index}] ({create.slug})"):
            services.monitor_create(org=org, data=dict(create.data))


def _reserve(org: Organization, amount: int) -> None:
    # Each create reserves its own slot too; asking for all of them first makes a refusal
    # report the real use before this run, not a count inflated by its own earlier rows.
    if amount:
        with _about(f"{amount} more active monitors"):
            reserve(org=org, limit=Limit.MONITORS, amount=amount)


def document_apply(
    org: Organization, doc: Any, prune: bool = False, dry_run: bool = False
) -> Applied:
    """Make the organization's monitors match `doc`; all or nothing.

    A dry run rehearses the same writes in a transaction that is then rolled back, so it
    answers the 402 a real run would hit instead of only guessing at the plan's limits.
    """
    plan = document_plan(org, doc, prune)
    if plan.has_changes:
        with transaction.atomic():
            _execute(org, plan)
            if dry_run:
                transaction.set_rollback(True)
    return Applied(plan=plan, dry_run=dry_run)


class ApplyOptions(serializers.Serializer):
    prune = serializers.BooleanField(default=False)
    dry_run = serializers.BooleanField(default=False)


# --- Importing a list of HTTP services --------------------------------------------------------

_SERVICES_TOP = {
    # file key -> monitor field
    "check_interval_seconds": "interval_seconds",
    "timeout_seconds": "timeout_seconds",
    "max_consecutive_failures": "failure_threshold",
}
_SERVICE_KEYS = {"name", "url", "critical", "expected_response_time", "tags"}


@dataclass
class ServicesImport:
    created: list[Monitor]
    warnings: list[str]


def _service_entry(service: dict[str, Any], common: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"kind": MonitorKind.HTTP, **common, "config": {}}
    if "name" in service:
        entry["name"] = service["name"]
        if isinstance(service["name"], str):
            entry["slug"] = slugify(service["name"])[:90]
    if "url" in service:
        entry["config"]["url"] = service["url"]
    if "critical" in service:
        entry["critical"] = service["critical"]
    if "tags" in service:
        entry["tags"] = service["tags"]
    seconds = service.get("expected_response_time")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        entry["expected_response_time_ms"] = round(seconds * 1000)
    return entry


def _is_seconds(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _import_errors(i: int, errors: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Map MonitorInput's field names back onto the file's keys."""
    named: dict[str, Any] = {}
    to_file = {monitor_field: key for key, monitor_field in _SERVICES_TOP.items()}
    for name, messages in errors.items():
        if name in to_file:
            top.setdefault(to_file[name], messages)
        elif name == "config":
            for key, inner in messages.items() if isinstance(messages, dict) else []:
                named[f"services[{i}].{key}"] = inner
        elif name == "expected_response_time_ms":
            named[f"services[{i}].expected_response_time"] = messages
        elif name in {"kind", "slug"}:
            named[f"services[{i}].name"] = messages
        else:
            named[f"services[{i}].{name}"] = messages
    return named


def services_validate(
    org: Organization, doc: Any
) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """Validated monitor data per service and the warnings; ValidationError naming
    `services[i].key` (or the top-level key) if anything is wrong."""
    if not isinstance(doc, dict):
        raise serializers.ValidationError({"document": ['Expected a mapping with "services".']})
    warnings = [
        f"ignoring unknown key '{key}'"
        for key in sorted(set(doc) - {*_SERVICES_TOP, "services"}, key=str)
    ]
    errors: dict[str, Any] = {}
    top_errors: dict[str, Any] = {}
    service_list = doc.get("services")
    if not isinstance(service_list, list):
        raise serializers.ValidationError({"services": ["Required: a list of services."]})
    common = {field: doc[key] for key, field in _SERVICES_TOP.items() if key in doc}
    taken = set(Monitor.objects.for_org(org).values_list("slug", flat=True))
    first_index: dict[str, int] = {}
    validated: list[tuple[int, dict[str, Any]]] = []
    for i, service in enumerate(service_list):
        if not isinstance(service, dict):
            errors[f"services[{i}]"] = ["Expected a mapping with name and url."]
            continue
        warnings += [
            f"services[{i}]: ignoring unknown key '{key}'"
            for key in sorted(set(service) - _SERVICE_KEYS, key=str)
        ]
        entry = _service_entry(service, common)
        data, entry_errors = validate_entry(entry)
        named = _import_errors(i, entry_errors, top_errors)
        if not _is_seconds(service.get("expected_response_time")):
            named[f"services[{i}].expected_response_time"] = ["A number of seconds, e.g. 2.0."]
        slug = entry.get("slug")
        if "name" in service and isinstance(service["name"], str) and not slug:
            named.setdefault(f"services[{i}].name", []).append("Needs a letter or a digit.")
        elif slug in first_index:
            named.setdefault(f"services[{i}].name", []).append(
                f"Same name as services[{first_index[slug]}]."
            )
        elif slug in taken:
            named.setdefault(f"services[{i}].name", []).append(
                f"A monitor '{slug}' exists already (imported before?); apply_monitors updates "
                "monitors from a file."
            )
        if slug:
            first_index.setdefault(slug, i)
        errors.update(named)
        if data is not None and not named:
            validated.append((i, data))
    errors = {**top_errors, **errors}
    if errors:
        raise serializers.ValidationError(errors)
    return validated, warnings


def services_import(*, org: Organization, doc: Any) -> ServicesImport:
    """Create one HTTP monitor per service, all or none."""
    validated, warnings = services_validate(org, doc)
    if validated:
        interval = validated[0][1]["interval_seconds"]
        # Refused up front and said once: every service shares the file's interval.
        with _about(f"check_interval_seconds is {interval}"):
            require_interval(org=org, seconds=interval)
    created = []
    with transaction.atomic():
        _reserve(org, len(validated))
        for i, data in validated:
            with _about(f"services[{i}] ({data['name']})"):
                created.append(services.monitor_create(org=org, data=data))
    return ServicesImport(created=created, warnings=warnings)


# --- Messages for the commands ----------------------------------------------------------------


def error_lines(detail: Any, prefix: str = "") -> list[str]:
    """`{"monitors[1].config": {"url": ["..."]}}` -> `["monitors[1].config.url: ..."]`."""
    if isinstance(detail, dict):
        lines = []
        for key, value in detail.items():
            lines += error_lines(value, f"{prefix}.{key}" if prefix else str(key))
        return lines
    if isinstance(detail, list):
        lines = []
        for item in detail:
            lines += error_lines(item, prefix)
        return lines
    return [f"{prefix}: {detail}" if prefix else str(detail)]


def describe_upgrade(exc: UpgradeRequired) -> str:
    plan = exc.current_plan
    if exc.feature == Limit.MIN_INTERVAL_SECONDS:
        text = f"the {plan} plan checks at most every {exc.limit} s (min_interval_seconds)"
    elif exc.limit is not None:
        used = f", {exc.used} in use" if exc.used is not None else ""
        text = f"the {plan} plan allows {exc.limit} {exc.feature}{used}"
    else:
        text = f"the {plan} plan does not include {exc.feature}"
    where = "; ".join(getattr(exc, "__notes__", []))
    return f"Upgrade required: {text}{f' ({where})' if where else ''}. Nothing was changed."


@contextmanager
def command_write(
    command: Any, source: str, *, name: str, done: str, notes: bool = False
) -> Iterator[None]:
    """A management command's write through this module, audited as the system named after
    the command (`name`, e.g. "apply_monitors"; no person signs in there). An invalid
    document lists its errors on the command's stderr; every refusal becomes a CommandError
    that says nothing was `done` ("changed", "created"), with the refused entry when `notes`."""
    try:
        with audit.acting_as(audit.system_actor(f"manage.py {name}")):
            yield
    except ValidationError as exc:
        for line in error_lines(exc.detail):
            command.stderr.write(line)
        raise CommandError(f"{source}: invalid, nothing was {done}.") from exc
    except UpgradeRequired as exc:
        raise CommandError(describe_upgrade(exc)) from exc
    except ServiceError as exc:
        where = f" ({'; '.join(getattr(exc, '__notes__', []))})" if notes else ""
        raise CommandError(f"{exc.detail}{where} Nothing was {done}.") from exc
