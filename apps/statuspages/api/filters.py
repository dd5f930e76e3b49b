"""Query-string filters of the status-page lists."""

from __future__ import annotations

import django_filters

from apps.core.lists import uuid_filter


class SectionFilter(django_filters.FilterSet):
    page = uuid_filter("page_id")
