"""JSON from outside read within bounds: every bound is a short rule, never a raw Python error."""

from __future__ import annotations

import json

import pytest

from sagelift.domain.bounded_json import JsonLimits, find_json_problem, nesting_depth, parse_json_text
from sagelift.domain.errors import SageliftValidationError
from sagelift.domain.tags import parse_tag_document

LIMITS = JsonLimits(max_chars=10_000, max_depth=4, max_nodes=100, max_string=50)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("x" * 10_001, "at most 10000 are read"),
        ("[[[[[1]]]]]", "more than 4 levels deep"),
        ("[" * 9_000, "more than 4 levels deep"),
        ('{"a": ' + "1" * 20 + "}", "more than 19 digits"),
        ("[NaN]", "NaN, which is not JSON"),
        ("[-Infinity]", "-Infinity, which is not JSON"),
        ('["\\ud800"]', "lone surrogate"),
        ('["\\u0000"]', "NUL"),
        (json.dumps(["s" * 51]), "at most 50 (at [0])"),
        (json.dumps(list(range(100))), "more than 100 values"),
        ("{'a': 1}", "is not valid JSON (Expecting property name enclosed in double quotes at character 1)"),
        (b"\xff\xfe", "is not UTF-8 text"),
    ],
)
def test_out_of_bounds_text_gives_the_rule(text, rule):
    value, problem = parse_json_text(text, LIMITS)
    assert value is None
    assert problem is not None and rule in problem


def test_text_within_bounds_parses_and_brackets_inside_strings_do_not_count_as_nesting():
    text = json.dumps({"a": ["[[[[[[", {"b": '"]]]]\\"[[['}]})
    assert nesting_depth(text, 10) == 3
    assert parse_json_text(text, LIMITS) == (json.loads(text), None)


def test_native_values_are_walked_without_recursion_and_name_where_they_break():
    deep: list = []
    node = deep
    for _ in range(100_000):  # far beyond the interpreter's recursion limit
        node.append([])
        node = node[0]
    assert find_json_problem(deep, JsonLimits(), "conf") == (
        "conf" + "[0]" * 16,
        "nests objects and lists more than 16 levels deep",
    )
    assert find_json_problem({"a": {"b c": [1, 2**64]}}, JsonLimits(), "x") == (
        "x.a['b c'][1]",
        "has a number of more than 19 digits",
    )
    assert find_json_problem({1: "x"}, JsonLimits()) == ("", "object keys must be strings")
    assert find_json_problem({"a": {1, 2}}, JsonLimits()) == ("a", "holds a set, which is not JSON data")
    assert find_json_problem({"a": [1.5, "ok", None, True]}, JsonLimits()) is None


@pytest.mark.parametrize(
    ("document", "rule"),
    [
        ("[" * 200_000, "nests objects and lists more than 8 levels deep"),
        ('{"a": ' * 50_000 + '"x"' + "}" * 50_000, "at most 262144 are read"),
        (b"x" * (256 * 1024 + 1), "at most 262144 are read"),
        ('{"a": ' + "7" * 5000 + "}", "more than 19 digits"),
    ],
)
def test_a_hostile_tag_document_is_refused_once_with_a_short_field_error(document, rule):
    with pytest.raises(SageliftValidationError) as raised:
        parse_tag_document(document, "s3://platform-config/tags/standard-tags.json")
    assert raised.value.fields == ["tags (s3://platform-config/tags/standard-tags.json)"]
    assert rule in str(raised.value)
    assert len(str(raised.value).splitlines()) == 1 and len(str(raised.value)) <= 160
