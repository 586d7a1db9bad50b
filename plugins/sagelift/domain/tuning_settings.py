"""The conf's optional ``tuning`` object (issue 17 item 1): hyperparameter tuning instead of one training job.

Placeholder wiring: the object is plumbed through both engines' parameters; until the tuning workflow
lands, validate refuses a non-empty ``tuning`` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sagelift.domain.bounded_json import JsonLimits, read_json_object
from sagelift.domain.errors import Problems

FIELD = "tuning"
LIMITS = JsonLimits(max_chars=64 * 1024, max_depth=6, max_nodes=2_000, max_string=1024)


@dataclass(frozen=True)
class TuningSettings:
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(self.raw)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.raw)

    def to_conf(self) -> dict[str, Any]:
        return dict(self.raw)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> TuningSettings:
        return cls(raw=dict(data or {}))


def parse_tuning(raw: Any, problems: Problems) -> TuningSettings:
    data = read_json_object(raw, LIMITS, FIELD, problems)
    if data:
        problems.add(FIELD, "tuning is not available yet; leave it empty")
    return TuningSettings()
