"""Query-string filters of the status-page lists."""

from __future__ import annotations

import django_filters

from apps.core.lists import uuid_filter


class SectionFilter(django_filters.FilterSet):
    # Not `page`: that is the page number of the list. (A UUID in `page` still filters, for
    # clients written before; see SectionPages.)
    status_page = uuid_filter("page_id", "Only the sections of this status page.")
