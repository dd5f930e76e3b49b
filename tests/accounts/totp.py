"""An authenticator app's current code, computed as the app would (RFC 6238)."""

from __future__ import annotations

import time

from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY, format_hotp_value, hotp_value


def code_for(secret: str, at: float | None = None) -> str:
    return format_hotp_value(hotp_value(secret, int(at or time.time()) // 30))


def secret_in_session(session) -> str:
    return session[SECRET_SESSION_KEY]
