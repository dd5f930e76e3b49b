"""Query-string filters of the healing lists."""

from __future__ import annotations

import django_filters

from apps.core.lists import choice_filter, since_until, uuid_filter
from apps.healing.models import AttemptStatus, Decision


class HealingAttemptFilter(django_filters.FilterSet):
    incident = uuid_filter("incident_id", "incident id")
    monitor = uuid_filter("monitor_id", "monitor id")
    status = choice_filter(AttemptStatus.choices)
    decision = choice_filter(Decision.choices)
    since, until = since_until("created_at", "created ")
