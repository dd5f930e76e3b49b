"""Alert channel plugins: one module per kind, each registering a `Transport` subclass.

Importing the package imports every kind so `transport_for` finds them all; add a new kind's
module to the import list below.
"""

from apps.alerts.channels import apprise, email, webhook
from apps.alerts.channels.base import (
    REGISTRY,
    DeliveryError,
    Message,
    Transport,
    register,
    transport_for,
)

__all__ = [
    "REGISTRY",
    "DeliveryError",
    "Message",
    "Transport",
    "apprise",
    "email",
    "register",
    "transport_for",
    "webhook",
]
