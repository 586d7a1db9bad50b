"""The conf's optional ``instance_recommendation`` object (issue 20 item 2): an Inference Recommender job before deploy.

Placeholder wiring: the object is plumbed through both engines' parameters; until the instance recommendation workflow
lands, validate refuses a non-empty ``instance_recommendation`` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sagelift.domain.bounded_json import JsonLimits, read_json_object
from sagelift.domain.errors import Problems

FIELD = "instance_recommendation"
LIMITS = JsonLimits(max_chars=16 * 1024, max_depth=4, max_nodes=200, max_string=1024)


@dataclass(frozen=True)
class RecommendationSettings:
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(self.raw)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.raw)

    def to_conf(self) -> dict[str, Any]:
        return dict(self.raw)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> RecommendationSettings:
        return cls(raw=dict(data or {}))


def parse_recommendation(raw: Any, problems: Problems) -> RecommendationSettings:
    data = read_json_object(raw, LIMITS, FIELD, problems)
    if data:
        problems.add(FIELD, "instance recommendation is not available yet; leave it empty")
    return RecommendationSettings()
