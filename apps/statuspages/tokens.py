"""Signed links for subscribers (confirm, unsubscribe) and private-page access cookies.

HMAC-SHA256 under SECRET_KEY (django.core.signing) with a salt per purpose: a confirm link
cannot be replayed as an unsubscribe link, nothing needs storing, and without SECRET_KEY no
link can be forged or guessed.
"""

from __future__ import annotations

import hashlib

from django.core import signing

CONFIRM_MAX_AGE = 7 * 24 * 3600
_SALT = "healthorch.statuspages.subscriber"


def subscriber_token(subscriber_id: object, purpose: str) -> str:
    return signing.dumps({"s": str(subscriber_id), "p": purpose}, salt=_SALT, compress=True)


def read_subscriber_token(token: str, purpose: str, max_age: int | None = None) -> str | None:
    """The subscriber id the token was made for, or None if forged, expired or for another use."""
    try:
        data = signing.loads(token, salt=_SALT, max_age=max_age)
    except signing.BadSignature:  # includes SignatureExpired
        return None
    if not isinstance(data, dict) or data.get("p") != purpose:
        return None
    return data.get("s")


def access_fingerprint(page) -> str:
    """What a private page's access cookie proves: changing the password or the token link
    changes it, so earlier cookies stop working."""
    raw = f"{page.pk}:{page.password_hash}:{page.access_token}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]
