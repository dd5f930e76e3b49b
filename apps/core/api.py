"""API pieces every app's endpoints share that know no tenant: strict input serializers. The
tenancy gate itself is apps.tenants.gate.api; filtered lists are apps.core.lists."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """An input serializer that names unknown or read-only fields instead of ignoring them.

    Silently dropping `{"plan": "enterprise"}` would let a caller believe it took effect.

    A text field takes text only: `{"name": 5}` is refused, not stored as "5" (unless the
    context says `coerce_text`, for documents written in YAML, where `2024` is a number).

    Nested in another serializer (a list of steps, a section's monitors), it also requires its
    required fields in a partial update: PATCH may leave out a whole list, but each item it
    sends replaces one and must be complete (DRF skips required fields in the whole tree of
    a partial update, and the service then met an item without its key).
    """

    def to_internal_value(self, data: Any) -> Any:
        errors: dict[str, Any] = {}
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            errors = {
                name: ["Unknown or read-only field."] for name in sorted(set(data) - writable)
            }
            # DRF's CharField turns a number or a boolean into text; the schema says string.
            # (A YAML document's `slug: 2024` is a number: its reader sets `coerce_text`.)
            errors.update(
                {
                    name: [field.error_messages["invalid"]]
                    for name, field in self.fields.items()
                    if isinstance(field, serializers.CharField)
                    and not self.context.get("coerce_text")
                    and not field.read_only
                    and name in data
                    and data[name] is not None
                    and not isinstance(data[name], str)
                }
            )
            if self.parent is not None and getattr(self.root, "partial", False):
                errors.update(
                    {
                        name: [field.error_messages["required"]]
                        for name, field in self.fields.items()
                        if field.required and not field.read_only and name not in data
                    }
                )
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not isinstance(exc.detail, dict):
                raise
            errors.update(exc.detail)
        if errors:
            raise serializers.ValidationError(errors)
        return value


class StrictBooleanField(serializers.BooleanField):
    """`true` or `false` only: DRF's own also takes 1, 0, "yes", "off"..., which the schema
    (a JSON boolean) does not promise."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data
