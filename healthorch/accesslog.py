"""Access-log lines without the secrets some URLs carry (gunicorn's `--logger-class`).

A heartbeat's ping URL is the only credential it needs, a status page subscriber's confirm and
unsubscribe links act for that subscriber, and `?token=` opens a private status page. Access
logs travel further than the database (log shippers, support tickets), so gunicorn writes these
parts as `[redacted]`. Status badge URLs are meant to be public and stay readable.
"""

from __future__ import annotations

import re
from typing import Any

from gunicorn.glogging import Logger

REDACTED = "[redacted]"
_SECRETS = (
    re.compile(r"(/ping/)[0-9A-Fa-f-]{32,36}"),
    re.compile(r"(/(?:confirm|unsubscribe)/)[^/?#\s\"]+"),
    re.compile(r"([?&](?:token|key|api_key|access_token)=)[^&#\s\"]*", re.IGNORECASE),
)
# The atoms that can hold a URL: the request line, path, query string and referrer.
_URL_ATOMS = ("r", "U", "q", "f")


def redact(text: str) -> str:
    for pattern in _SECRETS:
        text = pattern.sub(lambda match: match.group(1) + REDACTED, text)
    return text


class RedactingLogger(Logger):
    """gunicorn's logger, with the URL parts of each access-log line redacted."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        for name in _URL_ATOMS:
            if isinstance(atoms.get(name), str):
                atoms[name] = redact(atoms[name])
        if isinstance(atoms.get("q"), str) and atoms["q"] and not atoms["q"].startswith("?"):
            atoms["q"] = redact("?" + atoms["q"])[1:]
        return atoms
