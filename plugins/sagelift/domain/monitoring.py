"""The conf's optional ``monitoring`` object (issue 20 item 3): a data-quality monitor on the endpoint (baseline, schedule, alarms).

Placeholder wiring: the object is plumbed through both engines' parameters; until the model monitoring workflow
lands, validate refuses a non-empty ``monitoring`` naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sagelift.domain.bounded_json import JsonLimits, read_json_object
from sagelift.domain.errors import Problems

FIELD = "monitoring"
LIMITS = JsonLimits(max_chars=16 * 1024, max_depth=4, max_nodes=200, max_string=1024)


@dataclass(frozen=True)
class MonitoringSettings:
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(self.raw)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.raw)

    def to_conf(self) -> dict[str, Any]:
        return dict(self.raw)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> MonitoringSettings:
        return cls(raw=dict(data or {}))


def parse_monitoring(raw: Any, problems: Problems) -> MonitoringSettings:
    data = read_json_object(raw, LIMITS, FIELD, problems)
    if data:
        problems.add(FIELD, "model monitoring is not available yet; leave it empty")
    return MonitoringSettings()
