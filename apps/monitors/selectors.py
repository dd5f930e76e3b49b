"""Reads for monitors."""

from __future__ import annotations

from django.db import connection
from django.db.models import Q, QuerySet

from apps.monitors.models import CheckResult, Monitor
from apps.tenants.models import Organization


def json_list_contains(field: str, value: str) -> Q:
    # PostgreSQL answers `@>` from the JSON itself; SQLite has no JSON containment, but tags
    # and regions are validated slugs, so matching the quoted item in the text is exact.
    if connection.vendor == "postgresql":
        return Q(**{f"{field}__contains": [value]})
    return Q(**{f"{field}__icontains": f'"{value}"'})


def monitor_list(*, org: Organization) -> QuerySet[Monitor]:
    """By name; the API filters them (`apps.monitors.api.filters`)."""
    return Monitor.objects.for_org(org).select_related("schedule").order_by("name", "id")


def result_list(*, monitor: Monitor) -> QuerySet[CheckResult]:
    """The API filters and pages them (`apps.monitors.api.filters`)."""
    return CheckResult.objects.filter(monitor=monitor)
