r"""Response assertions: the condition language HTTP monitors check on every response.

Each assertion is one line, ``<subject> <operator> <value>``. An HTTP check is up only when
every assertion holds; each one that fails is reported with what was expected and what the
response actually had, e.g. ``json.status == "UP"`` -> expected ``== "UP"``, actual ``"DOWN"``.

Subjects
    status             the HTTP status code                  status == 200
    response_time      time taken, in milliseconds           response_time < 300
    body               the body as text (first 64 KiB)       body contains "OK"
    header.<name>      a response header, name in any case   header.content-type contains "json"
    json<path>         a value inside the JSON body          json.data[0].id == 7
    cert_expires_in    seconds until the TLS certificate     cert_expires_in > 72h
                       expires (missing for http:// URLs)

    A JSON path chains ``.key`` and ``[index]`` steps: ``json.data[0].id``. Indexes count from
    0, negative ones from the end (``json.items[-1]`` is the last item). Keys that are not
    plain ASCII words (spaces, dots, accents, a leading digit) go in brackets: ``json["a b"]``.
    A final ``.length`` is the number of items of a list, characters of a string or keys of an
    object: ``json.items.length > 0``; write ``json.meta["length"]`` for a key named length.
    A bare ``json`` is the whole document, so ``json exists`` checks that the body is JSON.

Operators
    ==  !=             equal, not equal                      json.flag == true
    <  <=  >  >=       numeric comparison                    status >= 200
    contains           substring of a string, item of a      body contains "OK"
                       list or key of an object              json.tags contains "beta"
    not contains       the opposite                          body not contains "error"
    matches            RE2 regular expression (linear time;  body matches "^ok"
                       no backreferences or lookarounds),   body matches "(?i)healthy"
                       found anywhere unless anchored
    in                 equal to one of a list                status in [200, 204]
    exists             present (takes no value)              json.token exists
    not exists         absent (takes no value)               header.x-cache not exists

Values
    numbers            200   -1   0.5
    strings            "OK"; inside quotes \" is a quote and \\ a backslash; any other
                       backslash stays as written, so "\d+" is the regular expression \d+
    literals           true   false   null
    lists              [200, 204]   ["a", 1, null]   (lists cannot be nested)
    durations          250ms  10s  30m  72h  7d, only with response_time (compared in
                       milliseconds) and cert_expires_in (compared in seconds)

Rules
    * ``<``, ``<=``, ``>``, ``>=`` need a number or a duration; when the subject is not a
      number the assertion fails. Header values that read as numbers count as numbers, for
      ``==``, ``!=`` and ``in`` as well: ``header.content-length < 5000``.
    * Equality follows JSON types: ``json.count == 1`` fails for ``"1"``, ``true`` is not ``1``.
    * ``status``, ``response_time`` and ``cert_expires_in`` are numbers: ``contains`` and
      ``matches`` are refused on them. ``contains`` on text needs a string value, and
      ``matches`` fails on anything but text.
    * A JSON path or header that is not there is ``<missing>``: every operator then fails,
      except ``not exists``. A key of something that is not an object, an index of something
      that is not a list, an index past the end and the length of a number are missing too.
    * When the body is not valid JSON every ``json...`` assertion fails with ``<invalid json>``.
    * Limits: 500 characters per assertion, 20 assertions per monitor, 32 path steps. Regular
      expressions are RE2's: they run in time linear in the body, so no pattern can stall a
      check worker; backreferences and lookarounds are therefore refused.
    * Reported values show strings from the JSON body in quotes (``"1"`` is not ``1``), body
      and header text as is, and stop at 200 characters.

A mistake is reported with its position (counted from 0) and the offending text, e.g.
``unexpected 'foo' at position 7: expected an operator (==, !=, <, <=, >, >=, contains, not
contains, matches, in, exists)`` for ``status foo 200``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import operator
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import re2

from apps.monitors.checkers.base import ResponseContext

MAX_LENGTH = 500
MAX_ASSERTIONS = 20
MAX_PATH_STEPS = 32
MAX_ACTUAL = 200

SUBJECTS = ("status", "response_time", "body", "json", "header", "cert_expires_in")
NUMERIC_SUBJECTS = ("status", "response_time", "cert_expires_in")
DURATION_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
ORDERING = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
LITERALS = {"true": True, "false": False, "null": None}

EXPECT_SUBJECT = (
    "expected a subject (status, response_time, body, json, header.<name>, cert_expires_in)"
)
EXPECT_OPERATOR = (
    "expected an operator (==, !=, <, <=, >, >=, contains, not contains, matches, in, exists)"
)
EXPECT_VALUE = 'expected a value (number, duration, "string", true, false, null or [list])'

_TOKEN = re.compile(
    r"""(?P<space>\s+) | (?P<op>==|!=|<=|>=|<|>) | (?P<punct>[\[\],.]) | (?P<str>")
      | (?P<num>-?\d[\w.]*) | (?P<ident>[A-Za-z_][\w-]*) | (?P<junk>\S)""",
    re.VERBOSE | re.ASCII,
)
_NUMBER = re.compile(r"-?\d+(\.\d+)?", re.ASCII)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", re.ASCII)


class _Marker(NamedTuple):  # stands in for an actual value; compared by identity only
    label: str


MISSING = _Marker("<missing>")
INVALID_JSON = _Marker("<invalid json>")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class AssertionSyntaxError(ValueError):
    """An assertion that does not parse; `index` is its place in the list given to compile_many."""

    def __init__(self, text: str, position: int, token: str, message: str) -> None:
        super().__init__(text, position, token, message)
        self.text, self.position, self.token, self.message = text, position, token, message
        self.index: int | None = None

    def __str__(self) -> str:
        where = f"'{_clip(self.token, 40)}'" if self.token else "end of input"
        return f"unexpected {where} at position {self.position}: {self.message}"


@dataclass(frozen=True)
class AssertionResult:
    ok: bool
    expected: str
    actual: str


class _Token(NamedTuple):
    kind: str  # op, punct, str, num, dur, ident, junk, end
    text: str  # as written, quotes included
    pos: int
    value: Any = None

    def is_(self, kind: str, *texts: str) -> bool:
        return self.kind == kind and (not texts or self.text in texts)


def _read_string(text: str, start: int) -> tuple[str, int]:
    chars, i = [], start + 1
    while i < len(text):
        if text[i] == "\\" and text[i + 1 : i + 2] in ('"', "\\"):
            i += 1
        elif text[i] == '"':
            return "".join(chars), i + 1
        chars.append(text[i])
        i += 1
    message = "string is missing its closing quote"
    raise AssertionSyntaxError(text, start, text[start:][:50], message)


def _tokenize(text: str) -> list[_Token]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        kind, raw, pos = match.lastgroup, match.group(), match.end()
        value: Any = raw
        if kind == "space":
            continue
        if kind == "str":
            value, pos = _read_string(text, match.start())
            raw = text[match.start() : pos]
        elif kind == "num":
            if _NUMBER.fullmatch(raw):
                value = float(raw) if "." in raw else int(raw)
            elif duration := _DURATION.fullmatch(raw):
                amount = float(duration[1]) if "." in raw else int(duration[1])
                kind, value = "dur", amount * DURATION_MS[duration[2]]  # in milliseconds
            else:
                kind = "junk"
        tokens.append(_Token(kind, raw, match.start(), value))
    return [*tokens, _Token("end", "", len(text))]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Parser:
    """Recursive descent over the token list; every error names the token it stopped at."""

    def __init__(self, text: str) -> None:
        self.text, self.tokens, self.i = text, _tokenize(text), 0

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return token

    def error(self, token: _Token, message: str, text: str = "") -> AssertionSyntaxError:
        return AssertionSyntaxError(self.text, token.pos, text or token.text, message)

    def parse(self) -> CompiledAssertion:
        subject, path, length = self.subject()
        op_token, op = self.operator()
        if subject in NUMERIC_SUBJECTS and op in ("contains", "not contains", "matches"):
            raise self.error(op_token, f"expected an operator for numbers after {subject}")
        value, value_text, pattern = None, "", None
        if op not in ("exists", "not exists"):
            first = self.tokens[self.i]
            value = self.value(subject, in_list=False)
            last = self.tokens[self.i - 1]
            value_text = self.text[first.pos : last.pos + len(last.text)]
            pattern = self.check_value(op, value, first, value_text)
        if (end := self.take()).kind != "end":
            raise self.error(end, "expected the end of the assertion")
        expected = f"{op} {value_text}" if value_text else op
        return CompiledAssertion(self.text, subject, path, length, op, value, expected, pattern)

    def subject(self) -> tuple[str, tuple[str | int, ...], bool]:
        token = self.take()
        if not token.is_("ident", *SUBJECTS):
            raise self.error(token, EXPECT_SUBJECT)
        if token.text == "header":
            if not (dot := self.take()).is_("punct", "."):
                raise self.error(dot, "expected '.' and a header name, as in header.content-type")
            if (name := self.take()).kind != "ident":
                raise self.error(name, "expected a header name")
            return "header", (name.text.lower(),), False
        if token.text == "json":
            return ("json", *self.json_path())
        return token.text, (), False

    def json_path(self) -> tuple[tuple[str | int, ...], bool]:
        steps: list[str | int] = []
        while (token := self.tokens[self.i]).is_("punct", ".", "["):
            self.take()
            step = self.take()
            if token.text == "." and step.kind != "ident":
                raise self.error(step, "expected a key name after '.'")
            if token.text == "[":
                if step.kind != "str" and not (step.kind == "num" and type(step.value) is int):
                    raise self.error(step, 'expected an index like [0] or a key like ["name"]')
                if not (close := self.take()).is_("punct", "]"):
                    raise self.error(close, "expected ']'")
            steps.append(step.text if token.text == "." else step.value)
            if len(steps) > MAX_PATH_STEPS:
                raise self.error(token, f"expected at most {MAX_PATH_STEPS} path steps")
        # Only a dotted final `length` measures; json.x["length"] still reads the key.
        length = bool(steps) and self.tokens[self.i - 1].is_("ident", "length")
        return tuple(steps[:-1] if length else steps), length

    def operator(self) -> tuple[_Token, str]:
        token = self.take()
        if token.kind == "op" or token.is_("ident", "contains", "matches", "in", "exists"):
            return token, token.text
        if not token.is_("ident", "not"):
            raise self.error(token, EXPECT_OPERATOR)
        if not (word := self.take()).is_("ident", "contains", "exists"):
            raise self.error(word, "expected 'contains' or 'exists' after 'not'")
        return token, f"not {word.text}"

    def value(self, subject: str, in_list: bool) -> Any:
        token = self.take()
        if token.kind in ("num", "str"):
            return token.value
        if token.is_("ident", *LITERALS):
            return LITERALS[token.text]
        if token.kind == "dur" and subject == "response_time":
            return token.value
        if token.kind == "dur" and subject == "cert_expires_in":
            return token.value // 1000 if token.value % 1000 == 0 else token.value / 1000
        if token.kind == "dur":
            message = "expected a number: durations go with response_time and cert_expires_in"
            raise self.error(token, message)
        if not token.is_("punct", "[") or in_list:
            raise self.error(token, EXPECT_VALUE)
        items: list[Any] = []
        if self.tokens[self.i].is_("punct", "]"):
            self.take()
            return ()
        while True:
            items.append(self.value(subject, in_list=True))
            if (separator := self.take()).is_("punct", "]"):
                return tuple(items)
            if not separator.is_("punct", ","):
                raise self.error(separator, "expected ',' or ']'")

    def check_value(self, op: str, value: Any, first: _Token, text: str) -> Any:
        if op in ORDERING and not _is_number(value):
            raise self.error(first, f"expected a number or a duration after {op}", text)
        if op == "in" and not isinstance(value, tuple):
            raise self.error(first, "expected a list after 'in', as in [200, 204]", text)
        if op in ("contains", "not contains") and isinstance(value, tuple):
            raise self.error(first, f"expected a single value after '{op}', not a list", text)
        if op != "matches":
            return None
        if not isinstance(value, str):
            raise self.error(first, 'expected a "quoted" regular expression after matches', text)
        # RE2 matches in time linear in the body: a tenant's pattern cannot stall a worker that
        # checks other tenants' monitors (Python's backtracking `re` can take minutes on
        # `a*a*b` over a 64 KiB body). The price: no backreferences or lookarounds.
        try:
            return re2.compile(value)
        except (re2.error, re.error, OverflowError, RecursionError, ValueError) as exc:
            message = f"invalid regular expression: {getattr(exc, 'msg', exc)}"
            raise self.error(first, message, text) from None


class _Body:
    """The body parsed as JSON on first use, so the json assertions of one check share a parse."""

    def __init__(self, text: str) -> None:
        self.text = text

    @functools.cached_property
    def parsed(self) -> Any:
        try:
            return json.loads(self.text)
        except (ValueError, TypeError, RecursionError):  # RecursionError: "[[[[..." bodies
            return INVALID_JSON


def _number(value: Any, loose: bool) -> int | float | None:
    if loose and isinstance(value, str):
        with contextlib.suppress(ValueError):
            return float(value)
    return value if _is_number(value) else None


def _equal(actual: Any, expected: Any, loose: bool = False) -> bool:
    if loose and isinstance(actual, str) and _is_number(expected):
        return _number(actual, loose) == expected
    if _is_number(actual) and _is_number(expected):
        return actual == expected
    if isinstance(actual, list) and isinstance(expected, tuple):
        return len(actual) == len(expected) and all(
            _equal(a, e) for a, e in zip(actual, expected, strict=True)
        )
    return type(actual) is type(expected) and actual == expected


def _contains(actual: Any, expected: Any) -> bool | None:
    """None when the question does not apply, so `not contains` fails rather than passes."""
    if isinstance(actual, str | dict):
        return expected in actual if isinstance(expected, str) else None
    if isinstance(actual, list):
        return any(_equal(item, expected) for item in actual)
    return None


def _step(node: Any, step: str | int) -> Any:
    if isinstance(node, list) and isinstance(step, int):
        return node[step] if -len(node) <= step < len(node) else MISSING
    if isinstance(node, dict) and isinstance(step, str):
        return node.get(step, MISSING)
    return MISSING


def _render(value: Any, quote: bool) -> str:
    """Text from a JSON body is quoted (so "1" and 1 read differently); body and headers not."""
    if isinstance(value, _Marker):
        return value.label
    if isinstance(value, str) and not quote:
        return _clip(value, MAX_ACTUAL)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str):
        value = value[:MAX_ACTUAL]  # no point quoting 64 KiB to keep 200 characters
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (ValueError, TypeError, RecursionError):
        text = "<unprintable>"
    return _clip(text, MAX_ACTUAL)


@dataclass(frozen=True)
class CompiledAssertion:
    text: str
    subject: str
    path: tuple[str | int, ...]  # json steps; for header, the lower-cased name
    length: bool
    op: str
    value: Any
    expected: str
    pattern: Any = field(default=None, compare=False, repr=False)  # a compiled RE2 pattern

    def evaluate(self, ctx: ResponseContext) -> AssertionResult:
        return self._evaluate(ctx, _Body(ctx.body))

    def _evaluate(self, ctx: ResponseContext, body: _Body) -> AssertionResult:
        actual: Any = MISSING
        try:
            actual = self._resolve(ctx, body)
            ok = self._holds(actual)
        except Exception:
            # Last resort: a response must never crash the worker's batch, whatever it holds.
            ok = False
        return AssertionResult(ok, self.expected, _render(actual, self.subject == "json"))

    def _resolve(self, ctx: ResponseContext, body: _Body) -> Any:
        if self.subject == "status":
            return ctx.status
        if self.subject == "response_time":
            return ctx.response_time_ms
        if self.subject == "body":
            return ctx.body
        if self.subject == "cert_expires_in":
            return MISSING if ctx.cert_expires_in_seconds is None else ctx.cert_expires_in_seconds
        if self.subject == "header":
            return ctx.headers.get(self.path[0], MISSING)
        node = body.parsed
        if node is INVALID_JSON:
            return node
        for step in self.path:
            if (node := _step(node, step)) is MISSING:
                return node
        if self.length:
            return len(node) if isinstance(node, list | str | dict) else MISSING
        return node

    def _holds(self, actual: Any) -> bool:
        if self.op == "not exists":
            return actual is MISSING
        if isinstance(actual, _Marker):
            return False
        if self.op == "exists":
            return True
        loose = self.subject == "header"
        if self.op in ("==", "!="):
            return _equal(actual, self.value, loose) == (self.op == "==")
        if self.op == "in":
            return any(_equal(actual, item, loose) for item in self.value)
        if self.op in ORDERING:
            number = _number(actual, loose)
            return number is not None and ORDERING[self.op](number, self.value)
        if self.op == "matches":
            return isinstance(actual, str) and self.pattern.search(actual) is not None
        found = _contains(actual, self.value)
        return found is not None and found == (self.op == "contains")


@functools.lru_cache(maxsize=4096)
def compile_assertion(text: str) -> CompiledAssertion:
    """Parse one assertion; raises AssertionSyntaxError. Monitors share compiled results."""
    if not isinstance(text, str):
        raise AssertionSyntaxError("", 0, _clip(repr(text), 40), "expected a string")
    if len(text) > MAX_LENGTH:
        message = f"expected at most {MAX_LENGTH} characters"
        raise AssertionSyntaxError(text, MAX_LENGTH, text[MAX_LENGTH:][:50], message)
    return _Parser(text).parse()


def compile_many(texts: list[str]) -> list[CompiledAssertion]:
    """Parse a monitor's assertions; an error carries the list position of the bad one."""
    compiled = []
    for index, text in enumerate(texts):
        try:
            if index == MAX_ASSERTIONS:
                message = f"expected at most {MAX_ASSERTIONS} assertions per monitor"
                raise AssertionSyntaxError("", 0, _clip(str(text), 40), message)
            if not isinstance(text, str):  # lists and dicts would not even reach the cache
                raise AssertionSyntaxError("", 0, _clip(repr(text), 40), "expected a string")
            compiled.append(compile_assertion(text))
        except AssertionSyntaxError as exc:
            exc.index = index
            raise
    return compiled


def evaluate_all(compiled: list[CompiledAssertion], ctx: ResponseContext) -> list[dict[str, str]]:
    """The failures, one dict per failed assertion; the body is parsed as JSON at most once."""
    body = _Body(ctx.body)
    failures = []
    for assertion in compiled:
        result = assertion._evaluate(ctx, body)
        if not result.ok:
            failures.append(
                {"assertion": assertion.text, "expected": result.expected, "actual": result.actual}
            )
    return failures
