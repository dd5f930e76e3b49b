"""Query-string filters of the alerts lists."""

from __future__ import annotations

import django_filters

from apps.alerts.models import NotificationKind, NotificationStatus
from apps.core.lists import choice_filter, since_until, uuid_filter


class NotificationFilter(django_filters.FilterSet):
    status = choice_filter(NotificationStatus.choices)
    kind = choice_filter(NotificationKind.choices)
    channel = uuid_filter("channel_id", "channel id")
    incident = uuid_filter("incident_id", "incident id")
    since, until = since_until("created_at", "created ")
