"""Encryption at rest for secrets customers give us (database DSN passwords, tokens).

Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`. The key comes from
HEALTHORCH_ENCRYPTION_KEYS (comma-separated Fernet keys, newest first, so keys can be rotated:
old ciphertexts still decrypt, new ones use the first key); without it, a key is derived from
SECRET_KEY, which is fine for a laptop but ties the secrets to SECRET_KEY.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


@cache
def _fernet() -> MultiFernet:
    keys = list(settings.HEALTHORCH_ENCRYPTION_KEYS)
    if not keys:
        digest = hashlib.sha256(b"healthorch-secrets:" + settings.SECRET_KEY.encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    return MultiFernet([Fernet(key) for key in keys])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("secret cannot be decrypted with the configured keys") from exc


def encrypt_json(values: dict[str, Any]) -> str:
    """A plugin config's secret half, stored: "" when there is none."""
    return encrypt(json.dumps(values)) if values else ""


def decrypt_json(token: str) -> dict[str, Any]:
    """The secret half back from `encrypt_json`: {} for ""."""
    return json.loads(decrypt(token)) if token else {}
