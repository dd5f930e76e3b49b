"""What the audit log endpoint returns: entries with their actor (its filters: audit_log_filters)."""

from __future__ import annotations

from rest_framework import serializers

from apps.audit.models import ActorKind, AuditEntry


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
