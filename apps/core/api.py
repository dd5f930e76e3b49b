"""API pieces every app's endpoints share that know no tenant: strict input serializers. The
tenancy gate itself is apps.tenants.gate.api; filtered lists are apps.core.lists."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """An input serializer that names unknown or read-only fields instead of ignoring them.

    Silently dropping `{"plan": "enterprise"}` would let a caller believe it took effect.
    """

    def to_internal_value(self, data: Any) -> Any:
        errors: dict[str, Any] = {}
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            errors = {
                name: ["Unknown or read-only field."] for name in sorted(set(data) - writable)
            }
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not isinstance(exc.detail, dict):
                raise
            errors.update(exc.detail)
        if errors:
            raise serializers.ValidationError(errors)
        return value
