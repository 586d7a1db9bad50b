"""JSON from people and documents, read within bounds: size, nesting, numbers, strings.

A run's conf, its JSON-string parameters and the documents a step reads (the tag document) come from
outside. ``json.loads`` and the code after it fail in raw ways on hostile input: a deeply nested text
raises RecursionError, a 5,000-digit number ValueError, and a nested value reaches ``repr``/``deepcopy``
later. So every bound is checked before the parser or ``int()`` sees the input, and a broken bound is
returned as a rule (a sentence), which callers turn into a field error.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sagelift.domain.errors import Problems, kind, subfield

_STRING_RE = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET_RE = re.compile(r"[\[\]{}]")


@dataclass(frozen=True)
class JsonLimits:
    max_chars: int = 256 * 1024  # of a JSON text
    max_depth: int = 16  # nested objects and lists
    max_nodes: int = 20_000  # values in total
    max_string: int = 64 * 1024  # characters of one string (keys included)
    max_int_digits: int = 19  # a 64-bit integer


class _Refused(ValueError):
    pass


def nesting_depth(text: str, stop_after: int) -> int:
    """How deeply ``text``'s objects and lists nest (strings ignored), counting at most to ``stop_after``+1."""
    depth = deepest = 0
    for match in _BRACKET_RE.finditer(_STRING_RE.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_after:
                    break
        else:
            depth -= 1
    return deepest


def parse_json_text(text: str | bytes, limits: JsonLimits = JsonLimits()) -> tuple[Any, str | None]:
    """``(value, None)`` for a JSON text within ``limits``, else ``(None, rule broken)``."""
    if len(text) > limits.max_chars:
        return None, f"is {len(text)} characters of JSON; at most {limits.max_chars} are read"
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            return None, "is not UTF-8 text"
    if nesting_depth(text, limits.max_depth) > limits.max_depth:
        return None, f"nests objects and lists more than {limits.max_depth} levels deep"

    def bounded_int(digits: str) -> int:
        if len(digits.lstrip("-")) > limits.max_int_digits:
            raise _Refused(f"has a number of more than {limits.max_int_digits} digits")
        return int(digits)

    def no_constant(name: str) -> Any:
        raise _Refused(f"has {name}, which is not JSON")

    try:
        value = json.loads(text, parse_int=bounded_int, parse_constant=no_constant)
    except _Refused as refused:
        return None, str(refused)
    except json.JSONDecodeError as err:
        return None, f"is not valid JSON ({err.msg} at character {err.pos})"
    except (ValueError, RecursionError):  # anything the bounds above did not foresee is still a refusal
        return None, "is not JSON sagelift can read"
    problem = json_value_problem(value, limits)
    return (None, problem) if problem else (value, None)


def json_value_problem(value: Any, limits: JsonLimits = JsonLimits()) -> str | None:
    """The first bound ``value`` (already parsed, or given natively) breaks, else None."""
    found = find_json_problem(value, limits)
    if found is None:
        return None
    where, rule = found
    return f"{rule} (at {where})" if where else rule


def find_json_problem(
    value: Any, limits: JsonLimits = JsonLimits(), where: str = ""
) -> tuple[str, str] | None:
    """``(path, rule)`` of the first bound ``value`` breaks (path ``where`` extended by keys and
    indexes), else None. Iterative, so that a nested value cannot exhaust the stack while being checked."""
    stack: list[tuple[Any, int, str]] = [(value, 0, where)]
    nodes = 0
    while stack:
        item, depth, path = stack.pop()
        nodes += 1
        if nodes > limits.max_nodes:
            return where, f"holds more than {limits.max_nodes} values"
        if isinstance(item, dict | list | tuple):
            if depth >= limits.max_depth:
                return path, f"nests objects and lists more than {limits.max_depth} levels deep"
            problem = _push_children(item, depth, path, stack, limits)
        else:
            problem = _scalar_problem(item, limits)
        if problem:
            return path, problem
    return None


def _push_children(
    item: dict[Any, Any] | list[Any] | tuple[Any, ...],
    depth: int,
    path: str,
    stack: list[tuple[Any, int, str]],
    limits: JsonLimits,
) -> str | None:
    if not isinstance(item, dict):
        stack.extend((child, depth + 1, f"{path}[{i}]") for i, child in enumerate(item))
        return None
    for key, child in item.items():
        if not isinstance(key, str):
            return "object keys must be strings"
        problem = _string_problem(key, limits)
        if problem:
            return problem
        stack.append((child, depth + 1, _child(path, key)))
    return None


def _child(path: str, key: str) -> str:
    sub = subfield("", key)  # ".key", or "[<clipped repr>]" for a key that is not plain
    return (path + sub if path else sub[1:]) if sub.startswith(".") else path + sub


def _scalar_problem(item: Any, limits: JsonLimits) -> str | None:
    if item is None or isinstance(item, bool):
        return None
    if isinstance(item, int):
        if item.bit_length() > 63:
            return f"has a number of more than {limits.max_int_digits} digits"
        return None
    if isinstance(item, float):
        return None if math.isfinite(item) else "has a number that is not finite (NaN or infinity)"
    if isinstance(item, str):
        return _string_problem(item, limits)
    return f"holds a {type(item).__name__}, which is not JSON data"


def _string_problem(text: str, limits: JsonLimits) -> str | None:
    if len(text) > limits.max_string:
        return f"has a string of {len(text)} characters; at most {limits.max_string}"
    if "\x00" in text:
        return "has a NUL character in a string"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "has a string that is not valid Unicode (a lone surrogate)"
    return None


def read_json_object(
    raw: Any, limits: JsonLimits, field: str, problems: Problems
) -> Mapping[str, Any] | None:
    """An optional conf object (native, or its JSON text as the seed's JSON parameters arrive) within
    ``limits``; None when unset, or when it is refused (the problem is added under ``field``)."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, str):
        raw, problem = parse_json_text(raw, limits)
        if problem:
            problems.add(field, f"is a string but {problem}" if "JSON" in problem else problem)
            return None
    else:
        found = find_json_problem(raw, limits, field)
        if found:
            problems.add(*found)
            return None
    if not isinstance(raw, Mapping):
        problems.add(field, f"must be a JSON object (or its JSON text), got {kind(raw)}")
        return None
    return raw


def whole_number(value: Any, *, signed: bool = True) -> int | None:
    """An int from an int, a whole float or a string of at most 9 digits ("2", as a form or KFP sends
    it); else None. ``signed=False`` refuses a string with a minus sign."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < 1e9 else None
    digits = r"\s*-?[0-9]{1,9}\s*" if signed else r"\s*[0-9]{1,9}\s*"
    if isinstance(value, str) and re.fullmatch(digits, value):
        return int(value)
    return None
