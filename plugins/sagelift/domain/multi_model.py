"""The conf's optional ``multi_model`` object (issue 20 item 1): deploy into a team's shared multi-model endpoint instead of an endpoint of its own.

Placeholder wiring: the object is plumbed through both engines' parameters; until the multi-model workflow
lands, validate refuses a non-empty ``multi_model`` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sagelift.domain.bounded_json import JsonLimits, read_json_object
from sagelift.domain.errors import Problems

FIELD = "multi_model"
LIMITS = JsonLimits(max_chars=16 * 1024, max_depth=4, max_nodes=200, max_string=1024)


@dataclass(frozen=True)
class MultiModelSettings:
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(self.raw)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.raw)

    def to_conf(self) -> dict[str, Any]:
        return dict(self.raw)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> MultiModelSettings:
        return cls(raw=dict(data or {}))


def parse_multi_model(raw: Any, problems: Problems) -> MultiModelSettings:
    data = read_json_object(raw, LIMITS, FIELD, problems)
    if data:
        problems.add(FIELD, "multi-model is not available yet; leave it empty")
    return MultiModelSettings()
