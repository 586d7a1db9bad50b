"""training_channels checked against CreateTrainingJob's InputDataConfig before anything runs.

The shapes come from botocore's SageMaker model, shipped as ``training_channels.json`` (the domain
layer may not import botocore; ``scripts/refresh_instance_types.py`` regenerates it and a test fails
when it drifts from the model). ``validate_shape`` walks a value against those shapes: types, enums,
patterns, lengths, required and unknown members, as SageMaker itself would refuse them hours later.
On top come sagelift's own rules: data comes from S3 (the request builder sends S3DataSource only),
channel names are unique, and a training run has at least one channel.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from sagelift.domain.errors import Problems, kind, show, subfield
from sagelift.domain.platform import is_s3_uri

FIELD = "training_channels"
# Optional channel strings the request builder drops when empty (sagelift.domain.sagemaker._channel).
DROPPED_WHEN_EMPTY = ("ContentType", "CompressionType", "RecordWrapperType", "InputMode")
S3_DEFAULTS = {"S3DataType": "S3Prefix", "S3DataDistributionType": "FullyReplicated"}
_INT_RANGES = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


@cache
def channel_shapes() -> dict[str, Any]:
    return json.loads(resources.files("sagelift.domain").joinpath("training_channels.json").read_text())


@cache
def _pattern(pattern: str) -> re.Pattern[str] | None:
    # The model's patterns are Java regexes matched against the whole value; the ones in these shapes
    # are valid Python too (a test checks). One that is not is skipped rather than guessed.
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _one_of(allowed: list[str], value: Any) -> str:
    rule = f"must be one of {', '.join(allowed)}"
    if isinstance(value, str):
        close = difflib.get_close_matches(value, allowed, n=1, cutoff=0.6)
        if close:
            return f"{rule}; did you mean {close[0]!r}?"
    return f"{rule}, got {show(value)}"


def validate_shape(value: Any, shape_name: str, where: str, problems: Problems) -> None:
    """Add a problem for every way ``value`` breaks the model's shape ``shape_name``."""
    shape = channel_shapes()["shapes"][shape_name]
    check = _CHECKS.get(shape["type"])
    if check is not None:
        check(value, {**shape, "name": shape_name}, where, problems)


def _structure(value: Any, shape: Mapping[str, Any], where: str, problems: Problems) -> None:
    if not isinstance(value, dict):
        problems.add(where, f"must be an object, got {kind(value)}")
        return
    members = shape["members"]
    for key in value:
        if key not in members:
            close = difflib.get_close_matches(str(key), list(members), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f" (not in the model's {shape['name']})"
            problems.add(subfield(where, key), f"unknown field{hint}")
    for name in shape["required"]:
        if name not in value:
            problems.add(f"{where}.{name}", "required")
    for name, item in value.items():
        if name in members:
            validate_shape(item, members[name], f"{where}.{name}", problems)


def _list(value: Any, shape: Mapping[str, Any], where: str, problems: Problems) -> None:
    if not isinstance(value, list):
        problems.add(where, f"must be a list, got {kind(value)}")
        return
    _range(len(value), shape, where, problems, "items")
    for i, item in enumerate(value):
        validate_shape(item, shape["member"], f"{where}[{i}]", problems)


def _map(value: Any, shape: Mapping[str, Any], where: str, problems: Problems) -> None:
    if not isinstance(value, dict):
        problems.add(where, f"must be an object, got {kind(value)}")
        return
    _range(len(value), shape, where, problems, "entries")
    for key, item in value.items():
        validate_shape(key, shape["key"], where, problems)
        validate_shape(item, shape["value"], subfield(where, key), problems)


def _string(value: Any, shape: Mapping[str, Any], where: str, problems: Problems) -> None:
    if not isinstance(value, str):
        problems.add(where, f"must be a string, got {kind(value)}")
        return
    if "enum" in shape:
        if value not in shape["enum"]:
            problems.add(where, _one_of(shape["enum"], value))
        return
    if not _range(len(value), shape, where, problems, "characters") and "pattern" in shape:
        compiled = _pattern(shape["pattern"])
        if compiled is not None and not compiled.fullmatch(value):
            problems.add(where, f"must match {shape['pattern']}, got {show(value)}")


def _integer(value: Any, shape: Mapping[str, Any], where: str, problems: Problems) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add(where, f"must be a whole number, got {kind(value)}")
        return
    low, high = _INT_RANGES[shape["type"]]
    if not low <= value <= high:
        problems.add(where, f"must be a {shape['type']} between {low} and {high}")
        return
    _range(value, shape, where, problems, "")


def _number(value: Any, shape: Mapping[str, Any], where: str, problems: Problems) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.add(where, f"must be a number, got {kind(value)}")
        return
    _range(value, shape, where, problems, "")


def _boolean(value: Any, shape: Mapping[str, Any], where: str, problems: Problems) -> None:
    if not isinstance(value, bool):
        problems.add(where, f"must be true or false, got {kind(value)}")


def _range(measure: float, shape: Mapping[str, Any], where: str, problems: Problems, unit: str) -> bool:
    """Add a problem when ``measure`` is outside the shape's min/max; True when it was."""
    low, high = shape.get("min"), shape.get("max")
    if (low is not None and measure < low) or (high is not None and measure > high):
        bounds = f"at least {low}" if high is None else f"{low or 0} to {high}"
        problems.add(where, f"must be {bounds} {unit}".rstrip() + (f", got {measure}" if unit else ""))
        return True
    return False


_CHECKS = {
    "structure": _structure,
    "list": _list,
    "map": _map,
    "string": _string,
    "integer": _integer,
    "long": _integer,
    "float": _number,
    "double": _number,
    "boolean": _boolean,
}


def normalize_channel(channel: Any) -> Any:
    """The channel as the request builder sends it: empty optional strings dropped, S3 defaults explicit."""
    if not isinstance(channel, dict):
        return channel
    out = {k: v for k, v in channel.items() if not (k in DROPPED_WHEN_EMPTY and v in ("", None))}
    source = out.get("DataSource")
    if isinstance(source, dict) and isinstance(source.get("S3DataSource"), dict):
        s3 = {**S3_DEFAULTS, **source["S3DataSource"]}
        out["DataSource"] = {**source, "S3DataSource": s3}
    return out


def parse_training_channels(channels: list[Any], trains: bool, problems: Problems) -> list[dict[str, Any]]:
    """Check the channels against the model and sagelift's rules; return them as they will be sent."""
    if not channels:  # the request builder leaves InputDataConfig out: nothing to check but the need
        if trains:
            problems.add(
                FIELD, "training needs at least one channel (ChannelName and DataSource.S3DataSource)"
            )
        return []
    normalized = [normalize_channel(channel) for channel in channels]
    validate_shape(normalized, channel_shapes()["root"], FIELD, problems)
    seen: set[str] = set()
    for i, channel in enumerate(normalized):
        if not isinstance(channel, dict):
            continue
        where = f"{FIELD}[{i}]"
        name = channel.get("ChannelName")
        if isinstance(name, str) and name in seen:
            problems.add(f"{where}.ChannelName", f"channel names must be unique; {show(name)} repeats")
        elif isinstance(name, str):
            seen.add(name)
        _check_source(channel.get("DataSource"), f"{where}.DataSource", problems)
    return [channel for channel in normalized if isinstance(channel, dict)]


def _check_source(source: Any, where: str, problems: Problems) -> None:
    """sagelift reads training data from S3 only: the request builder sends S3DataSource."""
    if not isinstance(source, dict):
        return  # the shape check named it
    known = channel_shapes()["shapes"]["DataSource"]["members"]
    others = sorted(key for key in source if key in known and key != "S3DataSource")
    if others or "S3DataSource" not in source:
        problems.add(
            f"{where}.S3DataSource",
            "required, and the only data source sagelift sends"
            + (f" (got {', '.join(str(o)[:40] for o in others[:3])})" if others else ""),
        )
        return
    s3 = source["S3DataSource"]
    uri = s3.get("S3Uri") if isinstance(s3, dict) else None
    if isinstance(uri, str) and not is_s3_uri(uri):
        problems.add(
            f"{where}.S3DataSource.S3Uri", f"must be an S3 URI like s3://bucket/prefix/, got {show(uri)}"
        )
