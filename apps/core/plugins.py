"""What every configured plugin shares (alert channel transports, healing actions): a DRF
serializer validating its config, and the names of the config fields that are secrets (stored
encrypted, shown once)."""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework import serializers


class ConfiguredPlugin:
    config_serializer: ClassVar[type[serializers.Serializer]]
    secret_fields: ClassVar[tuple[str, ...]] = ()

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
