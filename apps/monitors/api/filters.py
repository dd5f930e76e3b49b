"""Query-string filters of the monitor lists. The monitor list's values are matched as given
(not validated, not trimmed): an unknown kind simply matches nothing."""

from __future__ import annotations

import django_filters
from django.db.models import Q, QuerySet

from apps.core.lists import IsoTimeFilter, document, since_until
from apps.monitors.models import MonitorKind, MonitorStatus
from apps.monitors.selectors import json_list_contains


def _exact(description: str = "", enum: list[str] | None = None, **kwargs):
    return document(django_filters.CharFilter(strip=False, **kwargs), description, enum=enum)


class MonitorFilter(django_filters.FilterSet):
    # No enum in the schema: another value is not refused, it matches nothing.
    kind = _exact(f"{', '.join(MonitorKind.values)} (another matches nothing)", field_name="kind")
    status = _exact(
        f"{', '.join(MonitorStatus.values)} (another matches nothing)", field_name="status"
    )
    tag = _exact(method="filter_in_list", field_name="tags")
    region = _exact(method="filter_in_list", field_name="regions")
    search = _exact("name or slug contains", method="filter_search")

    def filter_in_list(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(json_list_contains(name, value))

    def filter_search(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return qs.filter(Q(name__icontains=value) | Q(slug__icontains=value))


class ResultFilter(django_filters.FilterSet):
    since, until = since_until("checked_at", None, filter_class=IsoTimeFilter)
