"""PostgreSQL's COPY text format, built with string operations.

Adapting row values one by one through the driver (an INSERT's parameters, array dumpers)
costs several times more Python per row than formatting the row as one line of COPY text:
the hot write paths (check results, log lines) send their rows this way. A line is the row's
values separated by tabs; `NULL` stands for SQL NULL; text that may hold a backslash, newline,
carriage return or tab goes through `escape`.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: SQL NULL in a line of COPY text
NULL = "\\N"

_SPECIAL = re.compile(r"[\\\n\r\t]")
_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})

#: compact JSON, as a jsonb column takes it (non-ASCII kept as is)
dump_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def escape(text: str) -> str:
    """Text as a COPY value (escaped only when it holds a character COPY escapes)."""
    return text.translate(_ESCAPES) if _SPECIAL.search(text) else text


def json_value(value: Any) -> str:
    """A JSON-serialisable value as a COPY value for a json/jsonb column."""
    return escape(dump_json(value))
