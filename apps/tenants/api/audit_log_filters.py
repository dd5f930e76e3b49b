"""Query-string filters of the audit log."""

from __future__ import annotations

import uuid

import django_filters
from django.db.models import Q, QuerySet

from apps.core.lists import CHAR_MESSAGES, TextFilter, document, since_until


def _text(max_length: int, description: str = "", **kwargs) -> django_filters.CharFilter:
    return document(
        TextFilter(max_length=max_length, error_messages=CHAR_MESSAGES, **kwargs),
        description,
    )


class AuditFilter(django_filters.FilterSet):
    actor = _text(200, "actor kind, user id, key id, email or key label", method="filter_actor")
    object_type = _text(40, "monitor, channel, healingpolicy, ...")
    object_id = _text(64)
    action = _text(60, "e.g. monitor.updated")
    since, until = since_until("at")

    def filter_actor(self, qs: QuerySet, name: str, actor: str) -> QuerySet:
        """The actor kind (`user`, `api_key`, `operator`, `system`), a user's or key's id, a
        key's prefix (`hk_...`), or the label (an email, `API key "name" (hk_...)`)."""
        if actor in ("user", "api_key", "operator", "system"):
            return qs.filter(actor_kind=actor)
        if actor.startswith("hk_") and " " not in actor:
            # Labels end with the prefix in brackets; entries written before keys were named
            # in labels read `key hk_...`.
            return qs.filter(actor_kind="api_key").filter(
                Q(actor_label__endswith=f"({actor})") | Q(actor_label=f"key {actor}")
            )
        if actor.isdigit():
            return qs.filter(actor_user_id=int(actor))
        try:
            return qs.filter(actor_api_key_id=uuid.UUID(actor))
        except ValueError:
            return qs.filter(actor_label__iexact=actor)
