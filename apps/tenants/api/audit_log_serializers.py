"""What the audit log endpoint takes (filters) and returns (entries)."""

from __future__ import annotations

from rest_framework import serializers

from apps.audit.models import ActorKind, AuditEntry


class AuditFilters(serializers.Serializer):
    actor = serializers.CharField(
        required=False,
        max_length=200,
        help_text="an actor kind (user, api_key, operator, system), a user id, a key id or "
        "the label (email or `key hk_...`)",
    )
    object_type = serializers.CharField(required=False, max_length=40)
    object_id = serializers.CharField(required=False, max_length=64)
    action = serializers.CharField(required=False, max_length=60)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)


class AuditActorOutput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ActorKind.choices, source="actor_kind")
    label = serializers.CharField(source="actor_label")
    user = serializers.IntegerField(source="actor_user_id", allow_null=True)
    api_key = serializers.UUIDField(source="actor_api_key_id", allow_null=True)


class AuditEntryOutput(serializers.ModelSerializer):
    actor = AuditActorOutput(source="*")

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "at",
            "actor",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "changes",
            "data",
            "request_id",
        ]
        read_only_fields = fields
