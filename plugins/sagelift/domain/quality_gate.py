"""The conf's optional ``quality_gate`` (issue 17 item 7): thresholds on the trained model's metrics.

Placeholder wiring: the list is plumbed through both engines' parameters; until the gate lands,
validate refuses a non-empty ``quality_gate`` naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sagelift.domain.errors import Problems

FIELD = "quality_gate"


@dataclass(frozen=True)
class QualityGate:
    rules: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.rules)

    def to_dict(self) -> list[str]:
        return list(self.rules)

    def to_conf(self) -> list[str]:
        return list(self.rules)

    @classmethod
    def from_dict(cls, data: Sequence[str] | None) -> QualityGate:
        return cls(rules=tuple(str(r) for r in data or ()))


def parse_quality_gate(raw: Any, problems: Problems) -> QualityGate:
    if raw not in (None, "", [], ()):
        problems.add(FIELD, "the quality gate is not available yet; leave it empty")
    return QualityGate()
