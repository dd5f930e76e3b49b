"""The assertion language HTTP monitors evaluate on each response: parsing, evaluation, limits."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError

import pytest

from apps.monitors import assertions
from apps.monitors.assertions import (
    AssertionResult,
    AssertionSyntaxError,
    compile_assertion,
    compile_many,
    evaluate_all,
)
from apps.monitors.checkers.base import ResponseContext

DOCUMENT = {
    "status": "UP",
    "items": [1, 2, 3],
    "data": [{"id": 7, "name": "web"}],
    "flag": True,
    "missing": None,
    "count": 3,
    "tags": ["beta", "eu"],
    "meta": {"length": 9, "region": "eu"},
}
DAY = 86_400


def make_ctx(**overrides) -> ResponseContext:
    fields = {
        "status": 200,
        "response_time_ms": 120.0,
        "headers": {"content-type": "application/json; charset=utf-8", "content-length": "512"},
        "body": json.dumps(DOCUMENT),
        "cert_expires_in_seconds": 5 * DAY,
    }
    return ResponseContext(**{**fields, **overrides})


def check(text: str, **overrides) -> AssertionResult:
    return compile_assertion(text).evaluate(make_ctx(**overrides))


def syntax_error(text: str) -> AssertionSyntaxError:
    with pytest.raises(AssertionSyntaxError) as caught:
        compile_assertion(text)
    return caught.value


DOCUMENTED_EXAMPLES = [
    ("status == 200", {}),
    ("status >= 200", {}),
    ("response_time < 300", {}),
    ('body contains "OK"', {"body": "all OK"}),
    ('body not contains "error"', {}),
    ('body matches "^ok"', {"body": "ok, healthy"}),
    ('json.status == "UP"', {}),
    ("json.items.length > 0", {}),
    ("json.data[0].id == 7", {}),
    ("json.flag == true", {}),
    ("json.missing == null", {}),
    ('header.content-type contains "json"', {}),
    ("cert_expires_in > 72h", {}),
    ("status in [200, 204]", {}),
    ("json.token exists", {"body": '{"token": "abc"}'}),
    ("header.x-cache not exists", {}),
]


@pytest.mark.parametrize(("text", "overrides"), DOCUMENTED_EXAMPLES)
def test_every_documented_example_holds_on_a_matching_response(text, overrides):
    assert check(text, **overrides).ok


@pytest.mark.parametrize(
    ("text", "ok", "expected", "actual"),
    [
        ("status == 200", True, "== 200", "200"),
        ("status == 404", False, "== 404", "200"),
        ("status != 500", True, "!= 500", "200"),
        ("status != 200", False, "!= 200", "200"),
        ("response_time < 121", True, "< 121", "120"),
        ("response_time < 100", False, "< 100", "120"),
        ("response_time <= 120", True, "<= 120", "120"),
        ("response_time <= 119.5", False, "<= 119.5", "120"),
        ("response_time > 100", True, "> 100", "120"),
        ("response_time > 120", False, "> 120", "120"),
        ("response_time >= 120", True, ">= 120", "120"),
        ("response_time >= 500", False, ">= 500", "120"),
        ('body contains "OK"', True, 'contains "OK"', "all OK here"),
        ('body contains "down"', False, 'contains "down"', "all OK here"),
        ('body not contains "down"', True, 'not contains "down"', "all OK here"),
        ('body not contains "OK"', False, 'not contains "OK"', "all OK here"),
        ('body matches "O+K\\s"', True, 'matches "O+K\\s"', "all OK here"),
        ('body matches "^OK"', False, 'matches "^OK"', "all OK here"),
        ("status in [200, 204]", True, "in [200, 204]", "200"),
        ("status in [301, 302]", False, "in [301, 302]", "200"),
        ("header.content-length exists", True, "exists", "512"),
        ("json.token exists", False, "exists", "<missing>"),
        ("json.token not exists", True, "not exists", "<missing>"),
        ("json.status not exists", False, "not exists", '"UP"'),
    ],
)
def test_each_operator_records_what_was_expected_and_what_came_back(text, ok, expected, actual):
    overrides = {} if text.startswith("json") else {"body": "all OK here"}
    assert check(text, **overrides) == AssertionResult(ok=ok, expected=expected, actual=actual)


def test_a_syntax_error_reads_as_the_documented_sentence():
    error = syntax_error("status foo 200")
    assert str(error) == (
        "unexpected 'foo' at position 7: expected an operator "
        "(==, !=, <, <=, >, >=, contains, not contains, matches, in, exists)"
    )
    assert (error.text, error.position, error.token, error.index) == (
        "status foo 200",
        7,
        "foo",
        None,
    )
    assert isinstance(error, ValueError)


@pytest.mark.parametrize(
    ("text", "position", "token", "message"),
    [
        ("stauts == 200", 0, "stauts", "expected a subject"),
        ('"status" == 200', 0, '"status"', "expected a subject"),
        ("", 0, "", "expected a subject"),
        ("status 200", 7, "200", "expected an operator"),
        ("status = 200", 7, "=", "expected an operator"),
        ("status", 6, "", "expected an operator"),
        ('body not matches "x"', 9, "matches", "expected 'contains' or 'exists' after 'not'"),
        ("body contains OK", 14, "OK", "expected a value"),
        ("status == 20x", 10, "20x", "expected a value"),
        ("status == 1.2.3", 10, "1.2.3", "expected a value"),
        ("status ==", 9, "", "expected a value"),
        ("status in [[200]]", 11, "[", "expected a value"),
        ("status in [200 204]", 15, "204", "expected ',' or ']'"),
        ('body contains "OK', 14, '"OK', "string is missing its closing quote"),
        ('body contains "say \\"hi\\"', 14, '"say \\"hi\\"', "missing its closing quote"),
        ('body matches "(unclosed"', 13, '"(unclosed"', "invalid regular expression"),
        ('body matches "[a-"', 13, '"[a-"', "invalid regular expression"),
        ('body matches "(a)\\1"', 13, '"(a)\\1"', "invalid regular expression"),
        ('body matches "a(?=b)"', 13, '"a(?=b)"', "invalid regular expression"),
        ("body matches 5", 13, "5", "regular expression"),
        ("status == 200 please", 14, "please", "expected the end of the assertion"),
        ("json.token exists now", 18, "now", "expected the end of the assertion"),
        ('status == 200 "OK"', 14, '"OK"', "expected the end of the assertion"),
        ('status > "ok"', 9, '"ok"', "expected a number or a duration after >"),
        ("status in 200", 10, "200", "expected a list after 'in'"),
        ('json.tags contains ["a"]', 19, '["a"]', "not a list"),
        ('status contains "2"', 7, "contains", "expected an operator for numbers"),
        ("status < 10s", 9, "10s", "durations go with response_time and cert_expires_in"),
        ("response_time < -5s", 16, "-5s", "expected a value"),
        ('header == "x"', 7, "==", "header name"),
        ("header. == 1", 8, "==", "expected a header name"),
        ("json. == 1", 6, "==", "expected a key name after '.'"),
        ("json.items[x] == 1", 11, "x", "expected an index"),
        ("json.items[1.5] == 1", 11, "1.5", "expected an index"),
        ("json.items[0 == 1", 13, "==", "expected ']'"),
    ],
)
def test_a_syntax_error_points_at_the_offending_token(text, position, token, message):
    error = syntax_error(text)
    assert (error.position, error.token) == (position, token)
    assert message in error.message
    assert message in str(error)


def test_a_path_deeper_than_the_limit_is_a_syntax_error():
    error = syntax_error("json" + ".a" * 33 + " exists")
    assert error.position == 4 + 2 * 32
    assert "32 path steps" in error.message


def test_an_assertion_over_500_characters_is_refused_at_position_500():
    text = 'body contains "' + "x" * 500 + '"'
    error = syntax_error(text)
    assert error.position == 500
    assert "500 characters" in error.message


@pytest.mark.parametrize(
    ("text", "ok", "actual"),
    [
        ("json.absent == 1", False, "<missing>"),
        ("json.absent != 1", False, "<missing>"),
        ("json.absent not exists", True, "<missing>"),
        ("json.missing exists", True, "null"),
        ("json.missing == null", True, "null"),
        ("json.absent == null", False, "<missing>"),
        ("json.items[2] == 3", True, "3"),
        ("json.items[-1] == 3", True, "3"),
        ("json.items[3] exists", False, "<missing>"),
        ("json.items[-4] exists", False, "<missing>"),
        ('json.status[0] == "U"', False, "<missing>"),
        ("json.meta[0] exists", False, "<missing>"),
        ("json.items.first exists", False, "<missing>"),
        ('json.items["0"] exists', False, "<missing>"),
        ("json.data[0].name.first exists", False, "<missing>"),
        ('json.data[0]["name"] == "web"', True, '"web"'),
        ("json.meta.length == 2", True, "2"),
        ('json.meta["length"] == 9', True, "9"),
        ("json.meta.length.length exists", False, "<missing>"),
        ("json.status.length == 2", True, "2"),
        ("json.count.length exists", False, "<missing>"),
        ("json.length == 8", True, "8"),
        ('json.tags == ["beta", "eu"]', True, '["beta", "eu"]'),
        ('json.tags == ["beta"]', False, '["beta", "eu"]'),
        ('json.meta == "eu"', False, '{"length": 9, "region": "eu"}'),
        ("json exists", True, json.dumps(DOCUMENT)),
    ],
)
def test_json_paths_resolve_or_report_missing(text, ok, actual):
    assert check(text) == AssertionResult(ok=ok, expected=check(text).expected, actual=actual)


@pytest.mark.parametrize(
    "text",
    ['json.status == "UP"', "json exists", "json.token not exists", "json.items.length > 0"],
)
@pytest.mark.parametrize("body", ["", "not json", "{'single': 'quotes'}", "[" * 100_000])
def test_a_body_that_is_not_json_fails_every_json_assertion(text, body):
    result = check(text, body=body)
    assert (result.ok, result.actual) == (False, "<invalid json>")


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("json.status > 1", False),
        ("json.flag > 0", False),
        ("json.missing < 5", False),
        ("json.flag == 1", False),
        ("json.count == true", False),
        ("json.count == 3.0", True),
        ('json.count == "3"', False),
        ("json.count in [1, 2, 3]", True),
        ('json.count in ["3"]', False),
        ("status in []", False),
        ('json.tags contains "beta"', True),
        ('json.tags not contains "gamma"', True),
        ("json.items contains 2", True),
        ('json.items contains "2"', False),
        ('json.meta contains "region"', True),
        ('json.meta not contains "zone"', True),
        ('json.status contains "U"', True),
        ("json.count contains 3", False),
        ("json.count not contains 3", False),
        ("body contains 1", False),
        ("body not contains 1", False),
        ('json.count matches "3"', False),
        ('json.status matches "^U"', True),
        ("header.content-length < 1000", True),
        ("header.content-length == 512", True),
        ("header.content-length in [256, 512]", True),
        ('header.content-length == "512"', True),
        ("header.content-type > 1", False),
        ("header.content-type == 1", False),
        ("cert_expires_in >= 0", True),
    ],
)
def test_type_rules_turn_mismatches_into_failures_not_exceptions(text, ok):
    assert check(text).ok is ok


@pytest.mark.parametrize(
    "text",
    ['header.Content-Type contains "json"', 'header.CONTENT-TYPE contains "json"'],
)
def test_header_names_are_case_insensitive(text):
    assert check(text).ok


def test_a_header_that_is_absent_is_missing():
    assert check("header.x-cache == 1") == AssertionResult(False, "== 1", "<missing>")


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("response_time < 250ms", 250),
        ("response_time < 10s", 10_000),
        ("response_time < 1.5s", 1500),
        ("response_time < 2m", 120_000),
        ("cert_expires_in > 250ms", 0.25),
        ("cert_expires_in > 10s", 10),
        ("cert_expires_in > 30m", 1800),
        ("cert_expires_in > 72h", 259_200),
        ("cert_expires_in > 7d", 604_800),
        ("cert_expires_in in [1d, 2d]", (86_400, 172_800)),
    ],
)
def test_durations_convert_to_the_unit_of_their_subject(text, value):
    assert compile_assertion(text).value == value


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("response_time < 1s", True),
        ("response_time < 100ms", False),
        ("cert_expires_in > 4d", True),
        ("cert_expires_in >= 120h", True),
        ("cert_expires_in > 6d", False),
    ],
)
def test_durations_compare_against_the_measured_values(text, ok):
    assert check(text).ok is ok


def test_a_plain_http_response_has_no_certificate_expiry():
    assert check("cert_expires_in > 1d", cert_expires_in_seconds=None) == AssertionResult(
        False, "> 1d", "<missing>"
    )
    assert check("cert_expires_in not exists", cert_expires_in_seconds=None).ok


@pytest.mark.parametrize(
    ("text", "body", "ok"),
    [
        ('body contains "say \\"hi\\""', 'they say "hi" back', True),
        ('body contains "C:\\\\temp"', "saved to C:\\temp", True),
        ('body matches "^\\d+ jobs$"', "42 jobs", True),
        ('body matches "(?i)healthy"', "HEALTHY", True),
        ('body contains "é"', "café", True),
    ],
)
def test_strings_unescape_quotes_and_backslashes_and_keep_other_backslashes(text, body, ok):
    assert check(text, body=body).ok is ok


def test_numbers_and_literals_parse_to_their_json_types():
    assert compile_assertion("json.x == -1").value == -1
    assert compile_assertion("json.x == 0.5").value == 0.5
    assert compile_assertion('json.x in [1, "a", true, false, null]').value == (
        1,
        "a",
        True,
        False,
        None,
    )


def test_keys_that_are_not_plain_words_go_in_brackets():
    body = json.dumps({"user name": {"2fa": True, "café": 1, "a.b": 2}})
    assert check('json["user name"]["2fa"] == true', body=body).ok
    assert check('json["user name"]["café"] == 1', body=body).ok
    assert check('json["user name"]["a.b"] == 2', body=body).ok


def test_a_compiled_assertion_keeps_its_text_as_written():
    assert compile_assertion("  status==200 ").text == "  status==200 "
    assert compile_assertion("  status==200 ").expected == "== 200"


def test_compile_assertion_refuses_a_non_string():
    error = syntax_error(200)
    assert (error.message, error.token, error.index) == ("expected a string", "200", None)


def test_whitespace_around_tokens_is_optional():
    assert check("status==200").ok
    assert check("  json.items[ 0 ]  ==  1  ").ok


def test_reported_values_are_cut_to_200_characters():
    result = check('body contains "absent"', body="x" * 5000)
    assert len(result.actual) == 200
    assert result.actual.endswith("...")


def test_compiled_assertions_are_cached_by_text():
    assert compile_assertion("status == 200") is compile_assertion("status == 200")


def test_results_are_immutable():
    with pytest.raises(FrozenInstanceError):
        check("status == 200").ok = False


def test_compile_many_reports_the_index_of_the_bad_assertion():
    with pytest.raises(AssertionSyntaxError) as caught:
        compile_many(["status == 200", "body contains OK", "status == x"])
    assert (caught.value.index, caught.value.position, caught.value.token) == (1, 14, "OK")


@pytest.mark.parametrize("item", [200, None, ["status == 200"], {"a": 1}])
def test_compile_many_rejects_items_that_are_not_strings(item):
    with pytest.raises(AssertionSyntaxError) as caught:
        compile_many(["status == 200", item])
    assert caught.value.index == 1
    assert caught.value.message == "expected a string"


def test_compile_many_rejects_an_assertion_over_500_characters():
    ok = 'body contains "' + "x" * 484 + '"'
    assert len(ok) == 500
    with pytest.raises(AssertionSyntaxError) as caught:
        compile_many([ok, ok + " "])
    assert (caught.value.index, caught.value.position) == (1, 500)


def test_compile_many_accepts_20_assertions_and_refuses_the_21st():
    assert len(compile_many(["status == 200"] * 20)) == 20
    with pytest.raises(AssertionSyntaxError) as caught:
        compile_many(["status == 200"] * 21)
    assert caught.value.index == 20
    assert "at most 20 assertions" in caught.value.message


def test_evaluate_all_lists_only_the_failures():
    compiled = compile_many(['json.status == "UP"', "status == 201", "json.token exists"])
    assert evaluate_all(compiled, make_ctx()) == [
        {"assertion": "status == 201", "expected": "== 201", "actual": "200"},
        {"assertion": "json.token exists", "expected": "exists", "actual": "<missing>"},
    ]
    assert evaluate_all(compiled[:1], make_ctx()) == []


@pytest.fixture
def json_loads_calls(monkeypatch):
    calls = []
    real_loads = json.loads

    def counting_loads(text, *args, **kwargs):
        calls.append(text)
        return real_loads(text, *args, **kwargs)

    monkeypatch.setattr(assertions.json, "loads", counting_loads)
    return calls


def test_evaluate_all_parses_the_body_as_json_once(json_loads_calls):
    compiled = compile_many(
        ['json.status == "UP"', "json.items.length > 5", "json.token exists", "status == 200"]
    )
    assert len(evaluate_all(compiled, make_ctx())) == 2
    assert len(json_loads_calls) == 1


def test_evaluate_all_does_not_parse_json_nobody_asked_for(json_loads_calls):
    evaluate_all(compile_many(["status == 200", 'body contains "UP"']), make_ctx())
    assert json_loads_calls == []


@pytest.mark.parametrize(
    "body",
    [
        "[" * 100_000,
        "1" * 5000,
        '{"a": NaN, "b": Infinity}',
        '{"a": 1e999}',
        "\x00\udcff\ufffd",
        '"just a string"',
        "null",
    ],
)
def test_hostile_bodies_never_raise(body):
    ctx = make_ctx(body=body, headers={})
    texts = [text for text, _ in DOCUMENTED_EXAMPLES] + ["json exists", "json.a > 1", "json.b < 1"]
    for text in texts:
        result = compile_assertion(text).evaluate(ctx)
        assert isinstance(result.actual, str)
        assert len(result.actual) <= 200


def test_matches_runs_on_re2_over_patterns_that_backtrack_in_python_re():
    """`a*a*b` over 64 KiB of "a" takes minutes with backtracking; RE2 answers at once (timed
    by benchmarks/assertions.py). Here: the pattern is RE2's, and the answers are right."""
    import re2

    from apps.monitors.assertions import compile_assertion
    from apps.monitors.checkers.base import ResponseContext

    ctx = ResponseContext(status=200, response_time_ms=1, headers={}, body="a" * 65536)
    for pattern in ("a*a*b", "(a+)+$", ".*foo"):
        compiled = compile_assertion(f'body matches "{pattern}"')
        assert type(compiled.pattern) is type(re2.compile(pattern)), pattern
        assert compiled.evaluate(ctx).ok is (pattern == "(a+)+$")
