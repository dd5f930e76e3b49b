"""Structured logging: one JSON object per line, carrying the ids that tie a story together.

``request_id`` follows an HTTP request (taken from ``X-Request-ID`` or made up) and is passed
on to every Celery task enqueued while serving it, so a check can be followed from the request
or beat tick that dispatched it down to the notification it caused. ``task_id`` names the
Celery task a line was written from.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
task_id_var: ContextVar[str] = ContextVar("task_id", default="-")

# Attributes every LogRecord has; anything else was passed with `extra=` and is emitted as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "request_id",
    "task_id",
}


class ContextFilter(logging.Filter):
    """Stamp each record with the current request and task ids."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.task_id = task_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "-")
        task_id = getattr(record, "task_id", "-")
        if request_id != "-":
            entry["request_id"] = request_id
        if task_id != "-":
            entry["task_id"] = task_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
