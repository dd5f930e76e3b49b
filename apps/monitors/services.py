"""Writes for monitors: create, update, pause/resume, and the plan's downgrade rules."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from apps.audit import services as audit
from apps.core import crypto
from apps.core.errors import FieldErrors, ServiceError
from apps.monitors import engine
from apps.monitors.ingest import samples_store as samples_store  # re-exported (telemetry)
from apps.monitors.models import ACTIVE_KINDS, Monitor, MonitorKind, MonitorSchedule, MonitorStatus

# Day partitions and retention by plan, for another app's append-only table (telemetry's logs)
from apps.monitors.retention import partitions_ensure as partitions_ensure
from apps.monitors.retention import prune_partitioned as prune_partitioned
from apps.monitors.retention import retention_plan as retention_plan
from apps.monitors.schedule import schedule_clear, schedule_forget, schedule_set
from apps.monitors.secrets import secret_of as secret_of  # re-exported: one services API
from apps.monitors.state import announce_set
from apps.plans.models import Feature, Limit, Plan
from apps.plans.services import require_feature, require_interval, reserve
from apps.tenants.models import Organization

# The first check of a new monitor lands somewhere in its first interval (at most a minute
# away), so a thousand monitors imported at once do not all fire in the same second.
FIRST_CHECK_SPREAD_SECONDS = 60

_FEATURE_FOR_KIND = {MonitorKind.METRIC: Feature.METRICS_INGESTION}
# What pausing and resuming change, as the audit log shows it.
_PAUSE_FIELDS = ("paused", "paused_reason", "status")


def first_check_at(*, interval: int, now: datetime | None = None) -> datetime:
    now = now or timezone.now()
    return now + timedelta(seconds=random.uniform(0, min(interval, FIRST_CHECK_SPREAD_SECONDS)))  # noqa: S311


def _unique_slug(org: Organization, name: str, wanted: str | None) -> str:
    base = (wanted or slugify(name))[:90] or "monitor"
    slug, n = base, 1
    while Monitor.objects.for_org(org).filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def monitor_create(*, org: Organization, data: dict[str, Any]) -> Monitor:
    """Create a monitor from validated data, inside the plan: 402 past the monitor limit,
    below the minimum interval or for a kind the plan lacks. All or nothing."""
    kind = data["kind"]
    require_feature(org=org, feature=_FEATURE_FOR_KIND.get(kind, Feature.HEALTH_CHECKS))
    require_interval(org=org, seconds=data.get("interval_seconds", 300))
    secret = data.pop("secret", None)
    wanted_slug = data.pop("slug", None)
    with transaction.atomic():
        if not data.get("paused", False):
            reserve(org=org, limit=Limit.MONITORS)
        if wanted_slug and Monitor.objects.for_org(org).filter(slug=wanted_slug).exists():
            raise ServiceError("A monitor with this slug exists.", field="slug", code="taken")
        monitor = Monitor(
            organization=org, slug=_unique_slug(org, data["name"], wanted_slug), **data
        )
        if secret:
            monitor.secret = crypto.encrypt(secret)
        if kind == MonitorKind.HEARTBEAT:
            monitor.ping_token = uuid.uuid4()
        if monitor.paused:
            monitor.status = MonitorStatus.PAUSED
        try:
            with transaction.atomic():
                monitor.save()
        except IntegrityError as exc:
            raise ServiceError(
                "A monitor with this slug exists.", field="slug", code="taken"
            ) from exc
        # Heartbeats get a deadline from their first ping; paused monitors have nothing pending.
        if kind in ACTIVE_KINDS and not monitor.paused:
            schedule_set(monitor, first_check_at(interval=monitor.interval_seconds))
        else:
            schedule_forget(monitor)
        audit.record(
            org=org, action="monitor.created", target=monitor, after=audit.snapshot(monitor)
        )
    return monitor


def monitor_update(*, monitor: Monitor, data: dict[str, Any]) -> Monitor:
    """Change a monitor, all or nothing. Pausing and resuming go through their own rules
    (resuming takes an active-monitor slot), so a PATCH cannot slip past the plan."""
    org = monitor.organization
    if "interval_seconds" in data and data["interval_seconds"] < monitor.interval_seconds:
        require_interval(org=org, seconds=data["interval_seconds"])
    secret = data.pop("secret", None)
    paused = data.pop("paused", None)
    slug_taken = Monitor.objects.for_org(org).filter(slug=data.get("slug")).exclude(pk=monitor.pk)
    if "slug" in data and slug_taken.exists():
        raise ServiceError("A monitor with this slug exists.", field="slug", code="taken")
    # Pausing and resuming write their own entries; this one holds the other fields.
    before = {k: v for k, v in audit.snapshot(monitor).items() if k not in _PAUSE_FIELDS}
    with transaction.atomic():
        for field, value in data.items():
            setattr(monitor, field, value)
        if secret is not None:
            monitor.secret = crypto.encrypt(secret) if secret else ""
        monitor.save()
        if {"interval_seconds", "regions"} & data.keys() and monitor.next_check_at:
            # A shorter interval takes effect at once rather than after the old, longer wait.
            at = monitor.next_check_at
            if "interval_seconds" in data and monitor.kind in ACTIVE_KINDS:
                at = min(at, timezone.now() + timedelta(seconds=monitor.interval_seconds))
            schedule_set(monitor, at)
        if data or secret is not None:
            audit.record(org=org, action="monitor.updated", target=monitor, before=before)
        if paused is True and not monitor.paused:
            monitor_pause(monitor=monitor)
        elif paused is False and monitor.paused:
            monitor_resume(monitor=monitor)
    return monitor


def monitor_reschedule(*, monitor: Monitor) -> None:
    """Bring the monitor's pending row in line with a monitor saved elsewhere (the admin):
    paused has none, a scheduler-run monitor keeps its next check or gets a first one, and
    the row's copies of interval and regions follow the monitor."""
    if monitor.paused:
        schedule_clear([monitor.pk])
        schedule_forget(monitor)
        return
    at = monitor.next_check_at
    if at is None and monitor.kind in ACTIVE_KINDS:
        at = first_check_at(interval=monitor.interval_seconds)
    if at is not None:
        schedule_set(monitor, at)


def monitor_pause(*, monitor: Monitor, reason: str = "paused by a user") -> Monitor:
    """Stop checking: nothing stays pending, so the dispatcher and the sweep never see it.
    The status change is announced (a StatusChange row; open incidents stop escalating) and
    audited. Pausing a paused monitor changes (and records) nothing."""
    now = timezone.now()
    with transaction.atomic():
        # The row lock makes two pauses at once change and record the monitor once.
        locked = Monitor.objects.select_for_update(of=("self",)).get(pk=monitor.pk)
        if not locked.paused:
            before = audit.snapshot(locked, fields=list(_PAUSE_FIELDS))
            old = locked.status
            Monitor.objects.filter(pk=monitor.pk).update(
                paused=True,
                paused_reason=reason[:255],
                status=MonitorStatus.PAUSED,
                status_changed_at=now,
                updated_at=now,
            )
            schedule_clear([monitor.pk])
            locked.paused, locked.status, locked.status_changed_at = True, MonitorStatus.PAUSED, now
            locked.paused_reason = reason[:255]
            announce_set([(locked, old)], now)
            audit.record(
                org=monitor.organization_id, action="monitor.paused", target=locked, before=before
            )
    monitor.refresh_from_db()
    return monitor


def monitor_resume(*, monitor: Monitor) -> Monitor:
    """Resume checking; takes an active-monitor slot (402 when the plan is full). Announced
    and audited like a pause."""
    if not monitor.paused:
        return monitor
    with transaction.atomic():
        reserve(org=monitor.organization, limit=Limit.MONITORS)
        now = timezone.now()
        locked = (
            Monitor.objects.select_for_update(of=("self",))
            .filter(pk=monitor.pk, paused=True)
            .first()
        )
        if locked is not None:
            before = audit.snapshot(locked, fields=list(_PAUSE_FIELDS))
            old = locked.status
            Monitor.objects.filter(pk=monitor.pk).update(
                paused=False,
                paused_reason="",
                status=MonitorStatus.UNKNOWN,
                status_changed_at=now,
                consecutive_failures=0,
                consecutive_successes=0,
                updated_at=now,
            )
            locked.paused, locked.paused_reason = False, ""
            locked.status, locked.status_changed_at = MonitorStatus.UNKNOWN, now
            locked.consecutive_failures = locked.consecutive_successes = 0
            announce_set([(locked, old)], now)
            # Checked at once; a heartbeat waits for its next ping, as a new one does.
            if monitor.kind in ACTIVE_KINDS:
                schedule_set(monitor, now)
            audit.record(
                org=monitor.organization_id, action="monitor.resumed", target=locked, before=before
            )
    monitor.refresh_from_db()
    return monitor


def monitors_check_now(*, monitor_ids: list[Any]) -> list[Any]:
    """Run these monitors' checks now, in this process, recorded like scheduled ones (they feed
    the state machine, so a recovery resolves its incident by the usual rules). Paused monitors
    are left out. For the product acting on its own (healing's verification); a person's
    request is `monitor_check_now`, which is also audited."""
    return engine.run_monitors(list(monitor_ids))


def monitor_check_now(*, monitor: Monitor) -> Any:
    """Run the monitor's check now, in this process, and record the result (it feeds the
    state machine as a scheduled one does). Only active, unpaused monitors run on demand."""
    if monitor.paused or monitor.kind not in ACTIVE_KINDS:
        raise FieldErrors(
            {
                "detail": [
                    "Only active http, tcp, tls, dns, postgres and redis monitors run on demand."
                ]
            }
        )
    [result] = engine.run_monitors([monitor.pk])
    audit.record(
        org=monitor.organization_id,
        action="monitor.checked",
        target=monitor,
        data={"result": result.pk, "outcome": result.outcome},
    )
    return result


def monitor_delete(*, monitor: Monitor) -> None:
    """Delete the monitor and everything that refers to it. The row is locked before the
    rows that refer to it are collected: a check recording its result meanwhile either
    committed first (its rows go with the monitor) or waits and finds the monitor gone
    (engine.results_record). Without the lock a result could slip in between and fail this
    delete's commit on its foreign key (a 500 under load)."""
    with transaction.atomic():
        Monitor.objects.select_for_update(of=("self",)).filter(pk=monitor.pk).values_list(
            "pk"
        ).first()
        audit.delete_recorded(monitor, action="monitor.deleted")


# --- Downgrade rules (registered with plans) ------------------------------------------------


def apply_plan_limits(*, org: Organization, old_plan: Plan, new_plan: Plan) -> dict[str, Any]:
    """Fit the organization's monitors into its (new) plan, losing nothing.

    Active monitors over the new limit are paused, newest first, each with the reason;
    intervals below the new minimum are raised to it. Upgrades change nothing here.
    """
    effects: dict[str, Any] = {}
    active = Monitor.objects.for_org(org).active()
    cap = new_plan.monitors
    if cap is not None:
        over = list(
            active.order_by("-created_at").values_list("pk", flat=True)[
                : max(0, active.count() - cap)
            ]
        )
        if over:
            reason = f"plan changed to {new_plan.code}: over its limit of {cap} active monitors"
            now = timezone.now()
            pausing = list(Monitor.objects.filter(pk__in=over))
            _record_downgrade(
                org,
                "monitor.paused",
                Monitor.objects.filter(pk__in=over),
                after={"paused": True, "paused_reason": reason, "status": MonitorStatus.PAUSED},
                plan=new_plan,
            )
            Monitor.objects.filter(pk__in=over).update(
                paused=True,
                paused_reason=reason,
                status=MonitorStatus.PAUSED,
                status_changed_at=now,
                updated_at=now,
            )
            schedule_clear(over)
            olds = [(m, m.status) for m in pausing]
            for m in pausing:
                m.paused, m.status, m.status_changed_at = True, MonitorStatus.PAUSED, now
            announce_set(olds, now)
            effects["paused_monitors"] = [str(pk) for pk in over]
    floor = new_plan.min_interval_seconds
    raised = Monitor.objects.for_org(org).filter(interval_seconds__lt=floor)
    raised_ids = [str(pk) for pk in raised.values_list("pk", flat=True)]
    if raised_ids:
        _record_downgrade(
            org, "monitor.updated", raised, after={"interval_seconds": floor}, plan=new_plan
        )
        raised.update(interval_seconds=floor, updated_at=timezone.now())
        MonitorSchedule.objects.filter(monitor_id__in=raised_ids).update(interval_seconds=floor)
        effects["raised_intervals"] = {"to_seconds": floor, "monitors": raised_ids}
    return effects


def _record_downgrade(
    org: Organization, action: str, monitors: Any, *, after: dict[str, Any], plan: Plan
) -> None:
    """One audit entry per monitor a downgrade changes, by the system (the plan's rule acted,
    whoever changed the plan), in the plan change's transaction."""
    fields = list(after)
    audit.record_many(
        org=org,
        action=action,
        objects=[
            {
                "object_type": "monitor",
                "object_id": m.pk,
                "object_repr": m.name,
                "before": audit.snapshot(m, fields=fields),
                "after": after,
            }
            for m in monitors.only("pk", "name", *fields)
        ],
        data={"cause": "plan.changed", "plan": plan.code},
        actor=audit.SYSTEM,
    )


def count_active_monitors(org: Organization) -> int:
    return Monitor.objects.for_org(org).active().count()
