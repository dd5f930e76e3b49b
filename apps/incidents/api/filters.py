"""Query-string filters of the incidents and maintenance-window lists. Several values go
comma-separated or repeated (`?status=open,resolved`); a bad value is a 400 naming the field."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone

from apps.core.lists import (
    ChoiceListFilter,
    FirstErrorFilterSet,
    IsoTimeFilter,
    TrueFalseFilter,
    document,
    since_until,
    uuid_filter,
)
from apps.incidents import selectors
from apps.incidents.models import OPEN_STATUSES, IncidentStatus, Severity, WindowKind


class IncidentFilter(FirstErrorFilterSet):
    # `monitor` first: the list checked it before the others.
    monitor = uuid_filter("monitor_id", "monitor id")
    status = document(
        ChoiceListFilter(allowed=[*IncidentStatus.values, "open"], method="filter_status"),
        "triggered, acknowledged, resolved or open (comma-separated)",
    )
    severity = document(
        ChoiceListFilter(field_name="severity", allowed=Severity.values),
        "info, warning, error, critical (comma-separated)",
    )
    since, until = since_until("opened_at", "opened ", filter_class=IsoTimeFilter)

    def filter_status(self, qs: QuerySet, name: str, value: list[str]) -> QuerySet:
        """`open` means triggered or acknowledged."""
        wanted = set(value)
        if "open" in wanted:
            wanted.discard("open")
            wanted.update(OPEN_STATUSES)
        return qs.filter(status__in=wanted)


class WindowFilter(FirstErrorFilterSet):
    kind = document(
        ChoiceListFilter(allowed=WindowKind.values, method="filter_kind"),
        enum=WindowKind.values,
    )
    active = document(TrueFalseFilter(method="filter_active"), "only windows in force now (or not)")

    def filter_kind(self, qs: QuerySet, name: str, value: list[str]) -> QuerySet:
        return qs.filter(kind=value[0])  # one kind: the first named

    def filter_active(self, qs: QuerySet, name: str, value: bool) -> QuerySet:
        org = self.request.tenancy.organization
        ids = [w.pk for w in selectors.windows_in_force(org_ids={org.pk}, at=timezone.now())]
        return qs.filter(pk__in=ids) if value else qs.exclude(pk__in=ids)
