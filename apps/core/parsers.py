"""The API's JSON parser: DRF's, with bounds a hostile body cannot get past.

Anyone on the internet can send a body to `/api/`. What the database cannot store, or what
would make the parser itself fail, is refused here with a 400 (or 413 for size) in the one
error shape, before any view runs, so nothing stored is touched:

- a body over `API_MAX_BODY_BYTES` (413: Django's read of the body stops there, as
  `DATA_UPLOAD_MAX_MEMORY_SIZE`, and the API's error handler answers its refusal), or one that
  is not UTF-8;
- nesting deeper than `API_MAX_JSON_DEPTH` (Python's parser would hit its recursion limit);
- integers longer than 20 digits (no column holds them) and numbers that are not finite
  (`NaN`, `Infinity`, or a float literal too large to be one): PostgreSQL's JSON refuses them;
- NUL characters and unpaired surrogates in any key or string: PostgreSQL cannot store the
  first, UTF-8 cannot encode the second.
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.conf import settings
from rest_framework import exceptions
from rest_framework.parsers import JSONParser

_MAX_INT_DIGITS = 20  # an unsigned 64-bit integer has 20 digits


def _int(literal: str) -> int:
    if len(literal.lstrip("-")) > _MAX_INT_DIGITS:
        raise exceptions.ParseError(f"Integers may have at most {_MAX_INT_DIGITS} digits.")
    return int(literal)


def _float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise exceptions.ParseError("Numbers must be finite.")
    return value


def _constant(name: str) -> Any:
    raise exceptions.ParseError(f"{name} is not a JSON number.")


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored or encoded (a NUL, an unpaired surrogate), or None."""
    if "\x00" in text:
        return "Text may not contain NUL characters."
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "Text may not contain unpaired surrogate characters."
    return None


def check_document(data: Any, *, max_depth: int) -> None:
    """Walk a parsed document without recursion: depth and every key and string."""
    pending: list[tuple[Any, int]] = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict | list) and depth > max_depth:
            raise exceptions.ParseError(f"JSON may be nested at most {max_depth} levels deep.")
        if isinstance(value, dict):
            for key, item in value.items():
                problem = text_problem(key)
                if problem:
                    raise exceptions.ParseError(problem)
                pending.append((item, depth + 1))
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            problem = text_problem(value)
            if problem:
                raise exceptions.ParseError(problem)


class BoundedJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None):
        # DRF hands a JSON parser the request body Django has already read, refusing one over
        # DATA_UPLOAD_MAX_MEMORY_SIZE (= API_MAX_BODY_BYTES; the error handler answers 413).
        try:
            text = stream.read().decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.ParseError("The request body is not UTF-8.") from None
        try:
            data = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
        except RecursionError:
            raise exceptions.ParseError(
                f"JSON may be nested at most {settings.API_MAX_JSON_DEPTH} levels deep."
            ) from None
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None
        check_document(data, max_depth=settings.API_MAX_JSON_DEPTH)
        return data
