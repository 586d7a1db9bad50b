"""The conf's optional ``labeling`` object (issue 20 item 4): a Ground Truth labeling job whose output manifest becomes a training channel.

Placeholder wiring: the object is plumbed through both engines' parameters; until the labeling workflow
lands, validate refuses a non-empty ``labeling`` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sagelift.domain.bounded_json import JsonLimits, read_json_object
from sagelift.domain.errors import Problems

FIELD = "labeling"
LIMITS = JsonLimits(max_chars=16 * 1024, max_depth=4, max_nodes=200, max_string=1024)


@dataclass(frozen=True)
class LabelingSettings:
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(self.raw)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.raw)

    def to_conf(self) -> dict[str, Any]:
        return dict(self.raw)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> LabelingSettings:
        return cls(raw=dict(data or {}))


def parse_labeling(raw: Any, problems: Problems) -> LabelingSettings:
    data = read_json_object(raw, LIMITS, FIELD, problems)
    if data:
        problems.add(FIELD, "labeling is not available yet; leave it empty")
    return LabelingSettings()
