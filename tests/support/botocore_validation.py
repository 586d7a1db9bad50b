"""Strict request validation against botocore's service models.

botocore's own client-side validation checks required members, types and minimums only; moto accepts
almost anything. This walks the operation's input shape and also checks maximum lengths and values,
enums and patterns, so a request body that real AWS would reject cannot pass a test just because the
emulator is lenient.

Patterns written in Java regex syntax that Python's ``re`` cannot compile (``\\p{...}`` classes) are
translated where simple and otherwise skipped; that is the one known gap.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import botocore.session
from botocore.model import ListShape, MapShape, Shape, StructureShape

_JAVA_CLASSES = {
    r"\p{L}": "a-zA-Z\u00c0-\uffff",
    r"\p{Z}": " \u00a0\u2000-\u200a\u2028\u2029\u202f\u205f\u3000",
    r"\p{N}": "0-9",
    r"\p{M}": "",
    r"\p{S}": "",
    r"\p{P}": "",
}


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def _operation_input(service: str, operation: str) -> Shape | None:
    model = _session().get_service_model(service)
    return model.operation_model(operation).input_shape


@cache
def _compile(pattern: str) -> re.Pattern[str] | None:
    translated = pattern
    for java, py in _JAVA_CLASSES.items():
        translated = translated.replace(java, py)
    try:
        return re.compile(translated, re.DOTALL)
    except re.error:
        return None


def validate_request(service: str, operation: str, params: dict[str, Any]) -> list[str]:
    """Every way ``params`` breaks the service model's input shape; empty when it conforms."""
    shape = _operation_input(service, operation)
    errors: list[str] = []
    if shape is None:
        if params:
            errors.append(f"{operation} takes no input, got {sorted(params)}")
        return errors
    _walk(shape, params, operation, errors)
    return errors


def _walk(shape: Shape, value: Any, path: str, errors: list[str]) -> None:
    kind = shape.type_name
    meta = shape.metadata
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            errors.append(f"{path}: expected an object, got {type(value).__name__}")
            return
        for required in shape.required_members:
            if required not in value:
                errors.append(f"{path}.{required}: required")
        for key, item in value.items():
            if key not in shape.members:
                errors.append(f"{path}.{key}: unknown member")
                continue
            _walk(shape.members[key], item, f"{path}.{key}", errors)
        return
    if isinstance(shape, ListShape):
        if not isinstance(value, list | tuple):
            errors.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        _check_range(len(value), meta, path, errors, "items")
        for i, item in enumerate(value):
            _walk(shape.member, item, f"{path}[{i}]", errors)
        return
    if isinstance(shape, MapShape):
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a map, got {type(value).__name__}")
            return
        _check_range(len(value), meta, path, errors, "entries")
        for key, item in value.items():
            _walk(shape.key, key, f"{path}<key {key!r}>", errors)
            _walk(shape.value, item, f"{path}[{key!r}]", errors)
        return
    if kind == "string":
        if not isinstance(value, str):
            errors.append(f"{path}: expected a string, got {type(value).__name__}")
            return
        _check_range(len(value), meta, path, errors, "characters")
        if shape.enum and value not in shape.enum:
            errors.append(f"{path}: {value!r} is not one of {shape.enum}")
        pattern = meta.get("pattern")
        if pattern:
            compiled = _compile(pattern)
            if compiled is not None and not compiled.search(value):
                errors.append(f"{path}: {value!r} does not match pattern {pattern}")
        return
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{path}: expected an integer, got {type(value).__name__}")
            return
        _check_range(value, meta, path, errors, "")
        return
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append(f"{path}: expected a number, got {type(value).__name__}")
            return
        _check_range(value, meta, path, errors, "")
        return
    if kind == "boolean":
        if not isinstance(value, bool):
            errors.append(f"{path}: expected a boolean, got {type(value).__name__}")
        return
    if kind == "blob":
        if not isinstance(value, bytes | bytearray | str) and not hasattr(value, "read"):
            errors.append(f"{path}: expected bytes, got {type(value).__name__}")
        return
    if kind == "timestamp":
        if not isinstance(value, datetime.datetime | str | int | float):
            errors.append(f"{path}: expected a timestamp, got {type(value).__name__}")
        return


def _check_range(measure: float, meta: dict[str, Any], path: str, errors: list[str], unit: str) -> None:
    low, high = meta.get("min"), meta.get("max")
    if low is not None and measure < low:
        errors.append(f"{path}: {measure} {unit} is below the minimum {low}".replace("  ", " "))
    if high is not None and measure > high:
        errors.append(f"{path}: {measure} {unit} is above the maximum {high}".replace("  ", " "))


@dataclass
class RecordedCall:
    service: str
    operation: str
    params: dict[str, Any]
    errors: list[str] = field(default_factory=list)


@contextmanager
def recording_aws_calls() -> Iterator[list[RecordedCall]]:
    """Record and strictly validate every AWS API call made in this process (sync and async clients)."""
    import botocore.client

    calls: list[RecordedCall] = []

    def record(client: Any, operation: str, params: dict[str, Any]) -> None:
        service = client.meta.service_model.service_name
        model_op = client.meta.service_model.operation_model(operation)
        params_copy = {k: v for k, v in params.items()}
        calls.append(
            RecordedCall(
                service, model_op.name, params_copy, validate_request(service, model_op.name, params_copy)
            )
        )

    original_sync = botocore.client.BaseClient._make_api_call

    def sync_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        record(self, operation_name, api_params)
        return original_sync(self, operation_name, api_params)

    patches: list[tuple[Any, str, Any]] = [(botocore.client.BaseClient, "_make_api_call", original_sync)]
    botocore.client.BaseClient._make_api_call = sync_call  # type: ignore[method-assign]
    try:
        import aiobotocore.client

        original_async = aiobotocore.client.AioBaseClient._make_api_call

        async def async_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            record(self, operation_name, api_params)
            return await original_async(self, operation_name, api_params)

        aiobotocore.client.AioBaseClient._make_api_call = async_call  # type: ignore[method-assign]
        patches.append((aiobotocore.client.AioBaseClient, "_make_api_call", original_async))
    except ImportError:
        pass
    try:
        yield calls
    finally:
        for owner, name, original in patches:
            setattr(owner, name, original)
