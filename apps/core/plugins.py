"""What every configured plugin family shares (alert channel transports, healing actions).

- `ConfiguredPlugin`: a DRF serializer validating its config, the names of the config fields
  that are secrets (stored encrypted, shown once), and the constructor that re-validates a
  stored config, failing with the family's own error.
- `Registry`: the plugins of one family by `kind`: a `register` decorator, lookup with the
  family's unknown-kind error, the sorted names (for choice fields), and config cleaning for
  writes. Each family keeps its own instance (`apps.alerts.channels.REGISTRY`,
  `apps.healing.actions.REGISTRY`).
- Config validators that more than one HTTP-speaking plugin uses.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import urlsplit

from django.conf import settings
from rest_framework import serializers

from apps.core import ssrf
from apps.core.errors import invalid_under


class ConfiguredPlugin:
    kind: ClassVar[str]
    config_serializer: ClassVar[type[serializers.Serializer]]
    secret_fields: ClassVar[tuple[str, ...]] = ()
    # How error messages name one plugin of the family: "invalid <kind> <noun> config".
    noun: ClassVar[str] = "plugin"

    def __init__(self, config: dict[str, Any]) -> None:
        # "stored" tells serializers the config was already saved once: values such as a
        # generated signing secret must be present now, not made up afresh per use.
        serializer = self.config_serializer(data=config, context={"stored": True})
        if not serializer.is_valid():
            raise self.failure(f"invalid {self.kind} {self.noun} config: {serializer.errors}")
        self.config: dict[str, Any] = dict(serializer.validated_data)

    @classmethod
    def failure(cls, message: str) -> Exception:
        """The family's error for a plugin that cannot be used (bad config, unknown kind)."""
        raise NotImplementedError

    @classmethod
    def clean_config(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Validate a config as entered (raises DRF ValidationError), filling in defaults."""
        serializer = cls.config_serializer(data=config)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    @classmethod
    def split_secrets(cls, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(public, secret) halves of a validated config."""
        public = {k: v for k, v in config.items() if k not in cls.secret_fields}
        secret = {k: v for k, v in config.items() if k in cls.secret_fields}
        return public, secret


P = TypeVar("P", bound=ConfiguredPlugin)
C = TypeVar("C", bound=type[ConfiguredPlugin])
L = TypeVar("L")


class Registry(dict[str, type[P]], Generic[P]):
    """The plugins of one family by kind. A dict, so `kind in REGISTRY`, `REGISTRY[kind]`,
    `REGISTRY.get(kind)` and iteration work as on a plain mapping."""

    def __init__(self, base: type[P], family: str) -> None:
        super().__init__()
        self.base = base
        self.family = family  # "channel", "healing action": how messages name the family

    def register(self, cls: C) -> C:
        """Class decorator: add a plugin under its `kind` (once; a second class is an error)."""
        if cls.kind in self and self[cls.kind] is not cls:
            raise ValueError(f"{self.family} kind {cls.kind!r} is already registered")
        self[cls.kind] = cls  # type: ignore[assignment]
        return cls

    def names(self) -> list[str]:
        """Every registered kind, sorted (the choices of a kind field)."""
        return sorted(self)

    def lookup(self, kind: str) -> type[P]:
        try:
            return self[kind]
        except KeyError:
            raise self.base.failure(f"unknown {self.family} kind {kind!r}") from None

    def create(self, kind: str, config: dict[str, Any]) -> P:
        """The plugin of `kind` with a stored config; the family's error when either is bad."""
        return self.lookup(kind)(config)

    def clean(
        self, kind: str, config: dict[str, Any], *, field: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Validate a config as entered for `kind` (known); its errors come out as FieldErrors
        under `field`. Returns the (public, secret) halves."""
        cls = self[kind]
        with invalid_under(field):
            cleaned = cls.clean_config(config)
        return cls.split_secrets(cleaned)


# --- shared config validators -----------------------------------------------------------------


def allow_private() -> bool:
    return bool(settings.HEALTHORCH_ALLOW_PRIVATE_TARGETS)


def validate_target_url(value: str) -> str:
    """An http(s) URL whose host is not a literal internal address or loopback name (unless
    allowed). Names are vetted again on every use, when `apps.core.outbound` resolves them."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise serializers.ValidationError("Use an http:// or https:// URL.")
    try:
        ssrf.check_literal(parts.hostname, allow_private=allow_private())
    except ssrf.BlockedTarget as exc:
        raise serializers.ValidationError(str(exc)) from exc
    return value


def validate_headers(
    value: dict[str, str], *, reserved: Collection[str], limit: int = 20
) -> dict[str, str]:
    """Extra request headers: at most `limit`, well-formed names, none of `reserved` (lower
    case), no line breaks in values (they would smuggle a header or a second request)."""
    if len(value) > limit:
        raise serializers.ValidationError(f"At most {limit} headers.")
    for name, header_value in value.items():
        if not name or any(c in name for c in " :\r\n") or name.lower() in reserved:
            raise serializers.ValidationError(f"Header {name!r} cannot be set.")
        if "\r" in header_value or "\n" in header_value:
            raise serializers.ValidationError(f"Header {name!r} has a line break.")
    return value


def ensure_signing_secret(attrs: dict[str, Any], context: dict[str, Any]) -> None:
    """A signed webhook's `secret`: generated when left out as the config is entered (the
    caller shows it once); a stored config without one is refused, since a secret made up
    per call would make every signature unverifiable."""
    if attrs.get("secret"):
        return
    if context.get("stored"):
        raise serializers.ValidationError({"secret": "A stored webhook needs its secret."})
    attrs["secret"] = secrets.token_urlsafe(32)
