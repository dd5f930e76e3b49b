from __future__ import annotations

from django.db import transaction
from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.core.lists import FilteredListMixin, cursor, cursor_page, filter_parameters
from apps.core.schema import AUTHENTICATED, READ, crud_schema, errors
from apps.incidents import rules, selectors, services
from apps.incidents.api import serializers as s
from apps.incidents.api.filters import IncidentFilter, WindowFilter
from apps.incidents.models import (
    AlertRule,
    Incident,
    MaintenanceWindow,
    MonitorDependency,
    RuleKind,
    Severity,
)
from apps.monitors.models import Monitor
from apps.tenants.gate.api import ORG_HEADER, TenantViewSet

TIMELINE_PREVIEW = 50


TimelineCursor = cursor("at", "id", page_size=100, max_page_size=500)


_ACTION_ERRORS = errors(400, 401, 403, 404, 409, 429)


@extend_schema_view(
    list=extend_schema(
        parameters=filter_parameters(IncidentFilter),
        responses={200: s.IncidentOutput(many=True), **errors(400, 401, 403, 404, 429)},
        summary="Incidents, newest first (cursor-paginated)",
    ),
    retrieve=extend_schema(
        responses={200: s.IncidentDetailOutput, **errors(401, 403, 404, 429)},
        summary="An incident with the start of its timeline",
    ),
    create=extend_schema(
        request=s.IncidentCreateInput,
        responses={201: s.IncidentDetailOutput, **errors(*AUTHENTICATED, 429)},
        summary="Raise a custom incident (notified like any other)",
    ),
)
@extend_schema(tags=["incidents"], parameters=[ORG_HEADER])
class IncidentViewSet(FilteredListMixin, mixins.ListModelMixin, TenantViewSet):
    model = Incident
    serializer_class = s.IncidentOutput
    pagination_class = cursor("-opened_at", "-id")
    filterset_class = IncidentFilter

    def scoped_queryset(self, org):
        return selectors.incident_list(org=org)

    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(self._detail(self.get_object()))

    def create(self, request: Request) -> Response:
        v = self.validated(s.IncidentCreateInput)
        incident = services.incident_create_custom(
            org=self.organization,
            title=v["name"],
            severity=v["severity"],
            description=v["description"],
            actor=self.tenancy.user,
            api_key=self.tenancy.api_key,
        )
        return Response(self._detail(incident), status=status.HTTP_201_CREATED)

    @extend_schema(request=s.NoteInput, responses={200: s.IncidentDetailOutput, **_ACTION_ERRORS})
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk: str) -> Response:
        note = self.validated(s.NoteInput)["note"]
        return self._act(services.incident_acknowledge, note=note)

    @extend_schema(request=s.NoteInput, responses={200: s.IncidentDetailOutput, **_ACTION_ERRORS})
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str) -> Response:
        note = self.validated(s.NoteInput)["note"]
        # manual: a user or an API key asked, even when no user is signed in
        return self._act(services.incident_resolve, note=note, manual=True)

    @extend_schema(
        request=s.TextInput, responses={201: s.EventOutput, **errors(*AUTHENTICATED, 429)}
    )
    @action(detail=True, methods=["post"])
    def notes(self, request: Request, pk: str) -> Response:
        text = self.validated(s.TextInput)["text"]
        event = services.incident_note(incident=self.get_object(), **self.acting, text=text)
        return Response(s.EventOutput(event).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=s.SnoozeInput,
        responses={201: s.SnoozeOutput, **_ACTION_ERRORS},
        summary="Silence the incident's monitor for a while (default 60 minutes)",
    )
    @action(detail=True, methods=["post"])
    def snooze(self, request: Request, pk: str) -> Response:
        minutes = self.validated(s.SnoozeInput)["minutes"]
        window = services.incident_snooze(
            incident=self.get_object(), **self.acting, minutes=minutes
        )
        return Response(
            {"silence": window.pk, "until": window.ends_at}, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        responses={200: s.EventOutput(many=True), **errors(401, 403, 404, 429)},
        summary="The whole timeline, oldest first (cursor-paginated)",
        filters=False,  # the incident list's filters are not this list's
    )
    @action(detail=True, methods=["get"], pagination_class=TimelineCursor)
    def timeline(self, request: Request, pk: str) -> Response:
        events = selectors.incident_events(incident=self.get_object())
        return cursor_page(self, events, TimelineCursor, s.EventOutput)

    def _act(self, service, **fields) -> Response:
        """Run a state change on the incident in the URL as the caller; answer with its detail."""
        return Response(self._detail(service(incident=self.get_object(), **self.acting, **fields)))

    def _detail(self, incident: Incident) -> dict:
        events = list(
            selectors.incident_events(incident=incident).order_by("at", "id")[
                : TIMELINE_PREVIEW + 1
            ]
        )
        more = len(events) > TIMELINE_PREVIEW
        next_url = None
        if more:
            next_url = self.request.build_absolute_uri(f"/api/v1/incidents/{incident.pk}/timeline/")
        return s.IncidentDetailOutput(
            incident, context={"timeline": events[:TIMELINE_PREVIEW], "timeline_next": next_url}
        ).data


# --- Alert rules ------------------------------------------------------------------------------


class RuleOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=RuleKind.choices)
    enabled = serializers.BooleanField()
    threshold = serializers.FloatField(allow_null=True)
    threshold_meaning = serializers.CharField(allow_null=True)
    window_seconds = serializers.IntegerField(allow_null=True)
    severity = serializers.ChoiceField(choices=Severity.choices)
    customized = serializers.BooleanField(
        help_text="False while the organization uses the default."
    )


_KIND = OpenApiParameter("kind", str, OpenApiParameter.PATH, enum=RuleKind.values)


def _rule_out(rule: rules.Rule, customized: bool) -> dict:
    spec = rules.THRESHOLDS.get(rule.kind)
    return RuleOutput(
        {
            "kind": rule.kind,
            "enabled": rule.enabled,
            "threshold": rule.threshold,
            "threshold_meaning": spec[0] if spec else None,
            "window_seconds": rule.window_seconds,
            "severity": rule.severity,
            "customized": customized,
        }
    ).data


@extend_schema_view(
    list=extend_schema(
        responses={200: RuleOutput(many=True), **errors(401, 403, 404, 429)},
        summary="Every alert rule of the organization, defaults included",
    ),
    retrieve=extend_schema(
        parameters=[_KIND], responses={200: RuleOutput, **errors(401, 403, 404, 429)}
    ),
    partial_update=extend_schema(
        parameters=[_KIND],
        request=s.AlertRuleInput,
        responses={200: RuleOutput, **errors(*AUTHENTICATED, 429)},
    ),
)
@extend_schema(tags=["alert-rules"], parameters=[ORG_HEADER])
class AlertRuleViewSet(TenantViewSet):
    model = AlertRule
    lookup_field = "kind"
    lookup_value_regex = "[a-z_]+"
    http_method_names = ["get", "patch", "head", "options"]
    pagination_class = None
    serializer_class = RuleOutput

    def list(self, request: Request) -> Response:
        rows = {r.kind: r for r in selectors.alert_rule_list(org=self.organization)}
        return Response(
            [
                _rule_out(rules.from_row(rows[kind]) if kind in rows else default, kind in rows)
                for kind, default in rules.DEFAULTS.items()
            ]
        )

    def retrieve(self, request: Request, kind: str) -> Response:
        self._kind(kind)
        row = selectors.alert_rule_list(org=self.organization).filter(kind=kind).first()
        return Response(
            _rule_out(rules.from_row(row) if row else rules.DEFAULTS[kind], row is not None)
        )

    def partial_update(self, request: Request, kind: str) -> Response:
        self._kind(kind)
        with transaction.atomic():
            services.alert_rules_ensure(org=self.organization)
            row = AlertRule.objects.for_org(self.organization).select_for_update().get(kind=kind)
            data = self.validated(s.AlertRuleInput, context={"rule": row})
            row = services.alert_rule_update(rule=row, data=dict(data))
        return Response(_rule_out(rules.from_row(row), True))

    def _kind(self, kind: str) -> None:
        if kind not in rules.DEFAULTS:
            raise Http404


# --- Dependencies -----------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        responses={200: s.DependencyOutput(many=True), **errors(401, 403, 404, 429)}
    ),
    create=extend_schema(
        request=s.DependencyInput,
        responses={201: s.DependencyOutput, **errors(*AUTHENTICATED, 429)},
    ),
    destroy=extend_schema(responses={204: None, **errors(401, 403, 404, 429)}),
)
@extend_schema(tags=["dependencies"], parameters=[ORG_HEADER])
class DependencyViewSet(mixins.ListModelMixin, mixins.DestroyModelMixin, TenantViewSet):
    model = MonitorDependency
    serializer_class = s.DependencyOutput
    http_method_names = ["get", "post", "delete", "head", "options"]

    def scoped_queryset(self, org):
        return selectors.dependency_list(org=org).order_by("created_at", "id")

    def create(self, request: Request) -> Response:
        data = self.validated(s.DependencyInput)
        org = self.organization
        found = {
            m.pk: m
            for m in Monitor.objects.for_org(org).filter(
                pk__in=[data["monitor"], data["depends_on"]]
            )
        }
        errors_: dict[str, list[str]] = {}
        for field in ("monitor", "depends_on"):
            if data[field] not in found:
                errors_[field] = ["No such monitor."]
        if errors_:
            raise serializers.ValidationError(errors_)
        dependency = services.dependency_create(
            org=org,
            monitor=found[data["monitor"]],
            depends_on=found[data["depends_on"]],
        )
        return Response(s.DependencyOutput(dependency).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: MonitorDependency) -> None:
        services.dependency_delete(dependency=instance)


# --- Maintenance windows ----------------------------------------------------------------------


@crud_schema(
    s.WindowOutput,
    s.WindowInput,
    list_errors=(400, *READ),
    list_parameters=filter_parameters(WindowFilter),
)
@extend_schema(tags=["maintenance-windows"], parameters=[ORG_HEADER])
class MaintenanceWindowViewSet(
    FilteredListMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet
):
    model = MaintenanceWindow
    serializer_class = s.WindowOutput
    pagination_class = cursor("-created_at", "-id")
    filterset_class = WindowFilter
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def scoped_queryset(self, org):
        if self.action != "list":
            return (
                super()
                .scoped_queryset(org)
                .select_related("created_by")
                .prefetch_related("monitors")
            )
        return selectors.window_list(org=org)

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "now": timezone.now()}

    def create(self, request: Request) -> Response:
        data = self.validated(s.WindowInput, context={"org": self.organization})
        window = services.window_create(org=self.organization, data=dict(data), **self.acting)
        return Response(self._out(window), status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str) -> Response:
        window = self.get_object()
        data = self.validated(
            s.WindowInput, partial=True, context={"org": self.organization, "window": window}
        )
        window = services.window_update(window=window, data=dict(data))
        return Response(self._out(window))

    def destroy(self, request: Request, pk: str) -> Response:
        services.window_delete(window=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _out(self, window: MaintenanceWindow) -> dict:
        window = MaintenanceWindow.objects.prefetch_related("monitors").get(pk=window.pk)
        return s.WindowOutput(window, context={"now": timezone.now()}).data
