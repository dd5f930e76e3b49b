"""One organization's data, a row of every tenant-owned model the API or the console shows.

The outsider tests build this for organization A and try every route as organization B. Each
model has one builder in BUILDERS, in the order their foreign keys need; a model the console
or the API scopes to an organization and that has no builder here fails
tests/tenancy/test_route_guard.py. Names carry MARK, so a leak shows in any response body.

Rows are written through the services where one exists (monitors, channels, policies, pages),
and directly where the row is history the product writes itself (results, events, attempts).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from django.db.models import Model
from django.utils import timezone

from apps.accounts import services as account_services
from apps.alerts.models import (
    EscalationPolicy,
    EscalationStep,
    Notification,
    NotificationAttempt,
)
from apps.alerts.services import channels as channel_services
from apps.audit.models import AuditEntry
from apps.billing.models import BillingAccount
from apps.healing.models import HealingAttempt, HealingPolicy
from apps.incidents.models import (
    AlertRule,
    Incident,
    IncidentEvent,
    MaintenanceWindow,
    MonitorDependency,
    StatusChange,
)
from apps.monitors import services as monitor_services
from apps.monitors.models import (
    CheckResult,
    ErrorRollup,
    Granularity,
    HeartbeatPing,
    MetricSample,
    ResultRollup,
)
from apps.plans.models import PlanChange, UsageCounter
from apps.plans.services import organization_change_plan
from apps.reports.models import ReportOptOut, ReportSettings
from apps.statuspages import services as page_services
from apps.statuspages.models import Subscriber
from apps.tenants import services as tenant_services
from apps.tenants.models import Membership, Organization, Role
from tests.factories import UserFactory

#: in every name the scene writes: an outsider's response must never contain it
MARK = "acme-private"

Scene = dict[str, Any]


def _monitor(s: Scene, name: str):
    return monitor_services.monitor_create(
        org=s["org"],
        data={"name": f"{MARK} {name}", "kind": "tcp", "config": {"host": "127.0.0.1", "port": 9}},
    )


def _incident(s: Scene) -> Incident:
    now = timezone.now()
    return Incident.objects.create(
        organization=s["org"],
        monitor=s["monitors.Monitor"],
        rule="service_down",
        title=f"{MARK} is down",
        severity="error",
        opened_at=now - timedelta(minutes=5),
        last_seen_at=now,
    )


def _history(model: type[Model], **fields: Any) -> Callable[[Scene], Model]:
    """A builder for a history row of the scene's monitor."""

    def build(s: Scene) -> Model:
        return model.objects.create(organization=s["org"], monitor=s["monitors.Monitor"], **fields)

    return build


def _now() -> Any:
    return timezone.now().replace(minute=0, second=0, microsecond=0)


#: model label -> how to build one row of it for the scene's organization (in order)
BUILDERS: dict[str, Callable[[Scene], Model]] = {
    "tenants.Organization": lambda s: s["org"],
    "tenants.Membership": lambda s: Membership.objects.create(
        organization=s["org"], user=UserFactory(email=f"{MARK}@example.test"), role=Role.MEMBER
    ),
    "accounts.SingleSignOn": lambda s: account_services.sso_configure(
        org=s["org"],
        issuer="https://id.example.test",
        client_id=f"{MARK}-client",
        client_secret="sso-secret",
        domain=f"{MARK}.example.test",
    ),
    "tenants.Invitation": lambda s: tenant_services.invitation_create(
        org=s["org"],
        email=f"{MARK}-invited@example.test",
        role=Role.MEMBER,
        actor_role=Role.OWNER,
        invited_by=s["owner"],
        base_url="http://testserver/",
    ).invitation,
    "tenants.ApiKey": lambda s: tenant_services.api_key_create(
        org=s["org"], name=f"{MARK} key", scopes=["read"]
    ).api_key,
    "plans.UsageCounter": lambda s: UsageCounter.objects.create(
        organization=s["org"], period_start=date.today().replace(day=1), metric="api_requests"
    ),
    "plans.PlanChange": lambda s: PlanChange.objects.filter(organization=s["org"]).first(),
    "audit.AuditEntry": lambda s: AuditEntry.objects.create(
        organization=s["org"],
        actor_kind="system",
        actor_label=MARK,
        action="monitor.create",
        object_type="monitor",
    ),
    "monitors.Monitor": lambda s: _monitor(s, "api"),
    "monitors.CheckResult": _history(CheckResult, checked_at=timezone.now(), outcome="up"),
    "monitors.HeartbeatPing": _history(HeartbeatPing, kind="success", received_at=timezone.now()),
    "monitors.MetricSample": lambda s: MetricSample.objects.create(
        organization=s["org"], source=MARK, name="load", value=1.0, ts=timezone.now()
    ),
    "monitors.ResultRollup": lambda s: _history(
        ResultRollup, granularity=Granularity.HOUR, bucket_start=_now(), total=1, up=1
    )(s),
    "monitors.ErrorRollup": lambda s: _history(
        ErrorRollup, bucket_start=_now(), outcome="down", first_seen=_now(), last_seen=_now()
    )(s),
    "incidents.Incident": _incident,
    "incidents.IncidentEvent": lambda s: IncidentEvent.objects.create(
        organization=s["org"], incident=s["incidents.Incident"], kind="note", at=timezone.now()
    ),
    "incidents.AlertRule": lambda s: AlertRule.objects.create(
        organization=s["org"], kind="flapping", severity="warning", threshold=7
    ),
    "incidents.MonitorDependency": lambda s: MonitorDependency.objects.create(
        organization=s["org"], monitor=s["monitors.Monitor"], depends_on=_monitor(s, "db")
    ),
    "incidents.StatusChange": _history(StatusChange, old="up", new="down", at=timezone.now()),
    "incidents.MaintenanceWindow": lambda s: MaintenanceWindow.objects.create(
        organization=s["org"], name=f"{MARK} window"
    ),
    "alerts.Channel": lambda s: channel_services.channel_create(
        org=s["org"], kind="email", name=f"{MARK} mail", config={"to": ["ops@example.test"]}
    )[0],
    "alerts.EscalationPolicy": lambda s: EscalationPolicy.objects.create(
        organization=s["org"], name=f"{MARK} policy", severities=["critical"]
    ),
    "alerts.EscalationStep": lambda s: EscalationStep.objects.create(
        policy=s["alerts.EscalationPolicy"], position=0
    ),
    "alerts.Notification": lambda s: Notification.objects.create(
        organization=s["org"],
        channel=s["alerts.Channel"],
        incident=s["incidents.Incident"],
        kind="opened",
        severity="error",
        idempotency_key=f"{MARK}-1",
    ),
    "alerts.NotificationAttempt": lambda s: NotificationAttempt.objects.create(
        notification=s["alerts.Notification"], number=1, started_at=timezone.now()
    ),
    "healing.HealingPolicy": lambda s: HealingPolicy.objects.create(
        organization=s["org"],
        name=f"{MARK} restart",
        monitor=s["monitors.Monitor"],
        action_kind="webhook",
        action_config={"url": "http://127.0.0.1:9/restart"},
    ),
    "healing.HealingAttempt": lambda s: HealingAttempt.objects.create(
        organization=s["org"],
        incident=s["incidents.Incident"],
        monitor=s["monitors.Monitor"],
        policy=s["healing.HealingPolicy"],
        decision="suggest",
        explanation=MARK,
        status="suggested",
    ),
    "reports.ReportSettings": lambda s: ReportSettings.objects.create(organization=s["org"]),
    "reports.ReportOptOut": lambda s: ReportOptOut.objects.create(
        organization=s["org"], user=s["tenants.Membership"].user
    ),
    "billing.BillingAccount": lambda s: BillingAccount.objects.create(organization=s["org"]),
    "statuspages.StatusPage": lambda s: page_services.status_page_create(
        org=s["org"], data={"name": f"{MARK} page", "slug": MARK}
    ),
    "statuspages.StatusPageSection": lambda s: page_services.section_create(
        org=s["org"],
        data={
            "page": s["statuspages.StatusPage"].pk,
            "name": f"{MARK} section",
            "monitors": [{"monitor": s["monitors.Monitor"].pk}],
        },
    ),
    "statuspages.IncidentUpdate": lambda s: page_services.incident_update_post(
        incident=s["incidents.Incident"],
        status="identified",
        message=MARK,
        user=s["owner"],
        notify=False,
    ),
    "statuspages.Postmortem": lambda s: page_services.postmortem_set(
        incident=s["incidents.Incident"], body=MARK, user=s["owner"]
    ),
    "statuspages.Subscriber": lambda s: Subscriber.objects.create(
        organization=s["org"], page=s["statuspages.StatusPage"], email=f"{MARK}@example.test"
    ),
    "statuspages.Badge": lambda s: page_services.badge_create(
        org=s["org"], monitor_id=s["monitors.Monitor"].pk
    ),
}


def build_scene(org: Organization, owner: Any) -> Scene:
    """A row of every model in BUILDERS for `org` (on the business plan, so no feature is
    refused for want of a plan: a refusal seen by the outsider is the gate's)."""
    organization_change_plan(org=org, plan_code="business", source="test")
    scene: Scene = {"org": org, "owner": owner}
    for label, build in BUILDERS.items():
        scene[label] = build(scene)
        assert scene[label] is not None, label
    return scene
