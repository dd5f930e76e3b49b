"""Encryption at rest for secrets customers give us (database DSN passwords, tokens).

Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`. The key comes from
HEALTHORCH_ENCRYPTION_KEYS (comma-separated Fernet keys, newest first, so keys can be rotated:
old ciphertexts still decrypt, new ones use the first key); without it, a key is derived from
SECRET_KEY, which is fine for a laptop but ties the secrets to SECRET_KEY.

A stored secret names the key it needs. A Fernet token does not say which key made it, so
`encrypt` writes `hk1:<source>:<key id>:<Fernet token>`: the key id is a short one-way
fingerprint of the key (`key_id`; it gives nothing of the key away), the source `k` for a key
of HEALTHORCH_ENCRYPTION_KEYS and `s` for the key derived from SECRET_KEY. When that key is not
configured (a database restored without its keys, a key dropped from the ring too early),
`decrypt` raises SecretUnavailable naming the key id and the setting to put it back in, and
`manage.py check_secrets` lists every stored secret that needs it. Secrets written before key
ids (a bare Fernet token) still decrypt with any configured key; when none does, the error
names the settings, as it cannot tell which key is missing. See decision 0023.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.signals import setting_changed
from django.db import models
from rest_framework import status

from apps.core.errors import ServiceError

SETTING = "HEALTHORCH_ENCRYPTION_KEYS"
_VERSION = "hk1"
_FROM_KEYS, _FROM_SECRET_KEY = "k", "s"


@dataclass(frozen=True)
class Key:
    """A configured key, as an operator may see it: its id and where it comes from."""

    id: str
    source: str  # "HEALTHORCH_ENCRYPTION_KEYS[0]", ... or "SECRET_KEY"
    fernet: Fernet

    def __repr__(self) -> str:  # never the key itself, even in a traceback
        return f"Key({self.id}, {self.source})"


def key_id(key: str | bytes) -> str:
    """The public name of a Fernet key: 12 hex digits of a hash of its 32 bytes. Operators can
    write it beside the key in their vault and match the two after a restore."""
    raw = base64.urlsafe_b64decode(key.encode() if isinstance(key, str) else key)
    return hashlib.sha256(b"healthorch-key-id:" + raw).hexdigest()[:12]


@cache
def keys() -> tuple[Key, ...]:
    """The key ring, newest (the one that encrypts) first."""
    configured = list(settings.HEALTHORCH_ENCRYPTION_KEYS)
    if not configured:
        digest = hashlib.sha256(b"healthorch-secrets:" + settings.SECRET_KEY.encode()).digest()
        derived = base64.urlsafe_b64encode(digest).decode()
        return (Key(key_id(derived), "SECRET_KEY", Fernet(derived)),)
    ring = []
    for index, key in enumerate(configured):
        try:
            ring.append(Key(key_id(key), f"{SETTING}[{index}]", Fernet(key)))
        except ValueError as exc:  # never echo the value: it may be a real key, mistyped
            raise ValueError(
                f"{SETTING}[{index}] is not a Fernet key (32 url-safe base64-encoded bytes)"
            ) from exc
    return tuple(ring)


def _keys_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in (SETTING, "SECRET_KEY"):
        keys.cache_clear()


setting_changed.connect(_keys_changed)


class SecretUnavailable(ServiceError, ValueError):
    """A stored secret cannot be decrypted with the configured keys.

    A configuration fault of the server, not of the request: the API answers 503 in the one
    error shape, workers record the message on the check, delivery or attempt and go on.
    `key_id` is the missing key's id ("" when the ciphertext does not name one); `setting` the
    setting an operator fixes. The message never carries a key or the secret."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    title = "Secret unavailable"

    def __init__(self, detail: str, *, code: str, key_id: str = "", setting: str = SETTING):
        super().__init__(detail, code=code)
        self.key_id = key_id
        self.setting = setting


def _configured() -> str:
    return ", ".join(f"{key.id} ({key.source})" for key in keys())


def _missing(source: str, wanted: str) -> SecretUnavailable:
    if source == _FROM_SECRET_KEY:
        return SecretUnavailable(
            f"A stored secret was encrypted with key {wanted}, derived from SECRET_KEY, and that "
            f"key is not configured (configured: {_configured()}). Start the server with the "
            f"SECRET_KEY this database was written with and {SETTING} empty, then run "
            "`manage.py check_secrets`.",
            code="encryption_key_missing",
            key_id=wanted,
            setting="SECRET_KEY",
        )
    return SecretUnavailable(
        f"A stored secret was encrypted with key {wanted}, which is not in {SETTING} "
        f"(configured: {_configured()}). Add that key to {SETTING} (after the first key, "
        "which encrypts new secrets), restart, and run `manage.py check_secrets`.",
        code="encryption_key_missing",
        key_id=wanted,
    )


def encrypt(plaintext: str) -> str:
    key = keys()[0]
    source = _FROM_SECRET_KEY if key.source == "SECRET_KEY" else _FROM_KEYS
    token = key.fernet.encrypt(plaintext.encode()).decode()
    return f"{_VERSION}:{source}:{key.id}:{token}"


def key_id_of(stored: str) -> str:
    """The id of the key a stored secret needs ("" for a secret written before key ids)."""
    parts = stored.split(":", 3)
    return parts[2] if len(parts) == 4 and parts[0] == _VERSION else ""


def decrypt(stored: str) -> str:
    """The plaintext of `encrypt`'s output. SecretUnavailable (a ValueError) when the key it
    needs is not configured or the ciphertext was damaged."""
    parts = stored.split(":", 3)
    if len(parts) == 4 and parts[0] == _VERSION:
        _, source, wanted, token = parts
        key = next((k for k in keys() if k.id == wanted), None)
        if key is None:
            raise _missing(source, wanted)
        candidates = [key.fernet]
    else:  # written before key ids: any configured key may be the one
        wanted, token = "", stored
        candidates = [key.fernet for key in keys()]
    try:
        return MultiFernet(candidates).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        if wanted:
            raise SecretUnavailable(
                f"A stored secret names key {wanted}, which is configured, but does not decrypt "
                "with it: the stored value was damaged or altered. It must be entered again.",
                code="secret_damaged",
                key_id=wanted,
            ) from exc
        raise SecretUnavailable(
            "A stored secret (written before secrets named their key) decrypts with none of "
            f"the configured keys ({_configured()}). Configure the {SETTING} (or, if it was "
            "empty, the SECRET_KEY) this database was written with, then run "
            "`manage.py check_secrets`.",
            code="encryption_key_missing",
        ) from exc


def encrypt_json(values: dict[str, Any]) -> str:
    """A plugin config's secret half, stored: "" when there is none."""
    return encrypt(json.dumps(values)) if values else ""


def decrypt_json(token: str) -> dict[str, Any]:
    """The secret half back from `encrypt_json`: {} for ""."""
    return json.loads(decrypt(token)) if token else {}


def secrets_kept(stored: str, *, given: Collection[str], secret_fields: Collection[str]) -> dict:
    """The stored secret half a config update keeps under the values `given` (a PATCH cannot
    resend secrets it was never shown). When the stored half's key is missing, an update that
    gives every secret field again needs none of it: that is how a tenant replaces a secret
    whose key is lost. Otherwise SecretUnavailable stands, naming the key."""
    try:
        return decrypt_json(stored)
    except SecretUnavailable:
        if set(secret_fields) <= set(given):
            return {}
        raise


# --- Where secrets are stored -----------------------------------------------------------------

#: every (model, field name) holding `encrypt`'s output, declared by the app that owns it
ENCRYPTED_FIELDS: list[tuple[type[models.Model], str]] = []


def stored_encrypted(model: type[models.Model], field: str) -> None:
    """Declare that `model.field` holds encrypted secrets, so `check_secrets` reads it."""
    # A typo fails at import, not in the middle of a restore. (local_fields, not get_field:
    # this runs while models load, before Django may cache a model's field map.)
    if field not in {f.name for f in model._meta.local_fields}:
        raise LookupError(f"{model._meta.label} has no field {field!r}")
    if (model, field) not in ENCRYPTED_FIELDS:
        ENCRYPTED_FIELDS.append((model, field))
