"""Who did something, as the product shows it: a person, an API key, or the system.

Rows that record a person in a `*_by` (or `actor`, `author`) user field record an API key
beside it, in a `*_key` field holding a snapshot of the key: `{"id", "name", "prefix"}`. A
snapshot, not a foreign key, because history must keep naming the key after it is renamed,
revoked and purged (the audit log's `actor_label` does the same). The label is the one way an
API key is named wherever an actor is shown: timelines, the console, the API, the audit log.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


def api_key_label(name: str, prefix: str) -> str:
    """`API key "deploy bot" (hk_ab12cd34)`: the name people chose and the prefix they can
    match against the secret they hold."""
    return f'API key "{name}" ({prefix})'


def api_key_ref(api_key: Any) -> dict[str, str] | None:
    """The snapshot stored in a `*_key` actor field (None for no key)."""
    if api_key is None:
        return None
    return {"id": str(api_key.pk), "name": api_key.name, "prefix": api_key.prefix}


def user_label(user: Any) -> str:
    return getattr(user, "email", "") or getattr(user, "username", "") or f"user {user.pk}"


def actor_label(user: Any = None, key: dict[str, str] | None = None, *, system: str = "") -> str:
    """How a row's actor reads: the user's email, the API key's label, else `system`."""
    if user is not None:
        return user_label(user)
    if key:
        return api_key_label(key.get("name", ""), key.get("prefix", ""))
    return system


class ApiKeyRef(serializers.Serializer):
    """An API key as an actor in the API's payloads (the snapshot in a `*_key` field)."""

    id = serializers.UUIDField()
    name = serializers.CharField()
    prefix = serializers.CharField()
