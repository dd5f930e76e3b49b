"""The channel plugin contract: a `Message` in, delivery details out, `DeliveryError` on failure.

Transports are framework-light on purpose: they know nothing of models, so the Channel and
Notification models (and the task that retries deliveries) can come later and stay thin.
`DeliveryError.permanent` is what the retry logic branches on: retrying a permanent failure
only spams a broken endpoint, giving up on a temporary one loses an alert.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from apps.core.plugins import ConfiguredPlugin, Registry

SEVERITIES = ("info", "warning", "error", "critical")
EVENTS = ("opened", "escalated", "acknowledged", "resolved", "flapping", "test")


@dataclass(frozen=True, kw_only=True)
class Message:
    title: str
    body: str
    severity: str
    event: str
    incident_id: str | None = None
    monitor_name: str | None = None
    url: str | None = None
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Fail where the message is built, not inside some transport's payload mapping.
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")
        if self.event not in EVENTS:
            raise ValueError(f"event must be one of {EVENTS}, not {self.event!r}")


class DeliveryError(Exception):
    """A delivery failed; `permanent` says whether retrying can help."""

    def __init__(self, message: str, *, permanent: bool, retry_after: float | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


def is_permanent_status(status: int) -> bool:
    """408 and 429 are the client errors that mean "later", not "never"."""
    return 400 <= status < 500 and status not in (408, 429)


class Transport(ConfiguredPlugin):
    """One delivery kind. Subclasses set `kind`, `config_serializer`, `secret_fields`."""

    noun = "channel"

    @classmethod
    def failure(cls, message: str) -> DeliveryError:
        # A config or kind that does not work now will not work on a retry either.
        return DeliveryError(message, permanent=True)

    def notify(self, message: Message) -> dict[str, Any]:
        raise NotImplementedError


REGISTRY: Registry[Transport] = Registry(Transport, "channel")
register = REGISTRY.register
transport_for = REGISTRY.create  # (kind, stored config) -> Transport, or a permanent DeliveryError
