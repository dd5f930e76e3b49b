"""Healing action plugins: one module per kind, each registering an `Action` subclass
(see base.py for the contract). Add a new kind's module to the import list below."""

from apps.healing.actions import http_request, noop, webhook
from apps.healing.actions.base import (
    REGISTRY,
    Action,
    ActionError,
    ActionRequest,
    action_for,
    register,
)

__all__ = [
    "REGISTRY",
    "Action",
    "ActionError",
    "ActionRequest",
    "action_for",
    "http_request",
    "noop",
    "register",
    "webhook",
]
