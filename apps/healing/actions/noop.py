"""`noop`: records the decision and calls nothing (a dry run of a policy). No config."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from apps.healing.actions.base import Action, ActionRequest, register


class NoopConfig(serializers.Serializer):
    pass


@register
class NoopAction(Action):
    kind = "noop"
    config_serializer = NoopConfig
    acts = False

    def run(self, request: ActionRequest) -> dict[str, Any]:
        return {"dry_run": True}
