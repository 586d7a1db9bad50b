"""The conf's optional ``quality_gate`` (issue 17 item 7): thresholds on the trained model's metrics.

A gate is a list of rules ``"<metric> <op> <number>"`` with op one of ``>=``, ``>``, ``<=``, ``<``, for
example ``["validation:auc >= 0.8", "validation:logloss < 0.4"]`` (a single string is one rule).

- ``parse_quality_gate`` reads it at validate: every rule names its field (``quality_gate[1]``); the
  metric must be one the run's training job reports (``defined``: the conf's metric definitions for
  your own image, sagelift's table for a built-in algorithm), and a run that trains nothing (it deploys
  an existing artifact) has no metrics to gate.
- ``evaluate_gate`` judges the final metric values of the training job (``FinalMetricDataList``): a
  rule whose metric the job did not report fails naming it; ``GateResult.message`` is the first line
  the run stops with (under 200 characters, naming the metric and both values).
- ``approval_status`` turns the result into the model package version's status: Rejected on a
  failure, PendingManualApproval where the account requires approval, else Approved.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sagelift.domain.errors import Problems, kind, show
from sagelift.domain.training_settings import TrainingSettings, resolve_metric_definitions

FIELD = "quality_gate"
MAX_RULES = 20
RULE_MAX = 300
OPS = (">=", ">", "<=", "<")
_RULE_RE = re.compile(r"^\s*(?P<metric>[^<>=\s][^<>=]*?)\s*(?P<op>>=|<=|>|<)\s*(?P<number>\S+)\s*$")

APPROVED = "Approved"
PENDING = "PendingManualApproval"
REJECTED = "Rejected"


def number(value: float) -> str:
    """A number as written (0.8, 1e-07, 100), exact: a rule read back from its text is the same rule."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class GateRule:
    metric: str
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {number(self.threshold)}"

    def holds(self, value: float) -> bool:
        if self.op == ">=":
            return value >= self.threshold
        if self.op == ">":
            return value > self.threshold
        if self.op == "<=":
            return value <= self.threshold
        return value < self.threshold


@dataclass(frozen=True)
class QualityGate:
    rules: tuple[GateRule, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.rules)

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(rule.metric for rule in self.rules)

    def to_dict(self) -> list[str]:
        return [str(rule) for rule in self.rules]

    def to_conf(self) -> list[str]:
        return self.to_dict()

    @classmethod
    def from_dict(cls, data: Sequence[str] | None) -> QualityGate:
        """The gate validate pushed (its rules as text); a rule that does not parse raises."""
        problems = Problems()
        gate = parse_quality_gate(list(data or ()), problems)
        problems.raise_if_any()
        return gate


def parse_rule(text: str, field: str, problems: Problems) -> GateRule | None:
    match = _RULE_RE.match(text)
    if match is None:
        problems.add(
            field,
            f"{show(text)} is not a rule '<metric> <op> <number>' with op one of {', '.join(OPS)} "
            "(for example 'validation:auc >= 0.8')",
        )
        return None
    try:
        threshold = float(match["number"])
    except ValueError:
        threshold = math.nan
    if not math.isfinite(threshold):
        problems.add(field, f"the threshold {show(match['number'])} is not a finite number")
        return None
    return GateRule(match["metric"].strip(), match["op"], threshold)


def parse_quality_gate(
    raw: Any,
    problems: Problems,
    *,
    training: TrainingSettings | None = None,
    algorithm: str | None = None,
    trains: bool = True,
) -> QualityGate:
    """The conf's gate. With ``training`` (the run's training settings) and ``algorithm`` (its built-in
    algorithm, None for your own image), each rule's metric must be one the training job reports."""
    if raw in (None, "", [], ()):
        return QualityGate()
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple):
        problems.add(FIELD, f"must be a list of rules like 'validation:auc >= 0.8', got {kind(raw)}")
        return QualityGate()
    if len(items) > MAX_RULES:
        problems.add(FIELD, f"at most {MAX_RULES} rules, got {len(items)}")
        return QualityGate()
    rules: list[GateRule] = []
    for i, item in enumerate(items):
        field = f"{FIELD}[{i}]"
        if not isinstance(item, str) or not item.strip() or len(item) > RULE_MAX:
            problems.add(field, f"must be a rule of 1-{RULE_MAX} characters like 'validation:auc >= 0.8'")
            continue
        rule = parse_rule(item, field, problems)
        if rule is not None:
            rules.append(rule)
    gate = QualityGate(tuple(rules))
    if not trains and gate.enabled:
        problems.add(
            FIELD,
            "model_artifact_s3_path is set, so nothing is trained and there are no metrics to gate; "
            "leave quality_gate empty",
        )
        return gate
    if training is not None:
        known = sorted({m.name for m in resolve_metric_definitions(training, algorithm)})
        for i, rule in enumerate(rules):
            if rule.metric not in known:
                listed = ", ".join(known[:4]) + (", ..." if len(known) > 4 else "")
                problems.add(
                    f"{FIELD}[{i}]",
                    f"{show(rule.metric)} is not a metric the training job reports "
                    f"({listed or 'none: define training.metric_definitions'})",
                )
    return gate


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict on a training job's final metrics; ``checks`` is JSON-able for XCom."""

    passed: bool
    checks: tuple[dict[str, Any], ...] = ()
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [dict(c) for c in self.checks], "message": self.message}


def evaluate_gate(gate: QualityGate, metrics: Mapping[str, float]) -> GateResult:
    """Check every rule against the job's final values; the message names the first failure."""
    checks: list[dict[str, Any]] = []
    failures: list[str] = []
    for rule in gate.rules:
        value = metrics.get(rule.metric)
        check: dict[str, Any] = {"rule": str(rule), "metric": rule.metric, "threshold": rule.threshold}
        if not isinstance(value, int | float) or isinstance(value, bool):
            check.update(value=None, passed=False)
            failures.append(
                f"quality_gate: the training job reported no final value for {rule.metric} (rule {rule})"[
                    :190
                ]
            )
        else:
            ok = rule.holds(float(value))
            check.update(value=value, passed=ok)
            if not ok:
                failures.append(
                    f"quality_gate: {rule.metric} is {number(value)}, which fails {rule.op} {number(rule.threshold)}"[
                        :190
                    ]
                )
        checks.append(check)
    if not failures:
        return GateResult(True, tuple(checks), "")
    more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
    return GateResult(False, tuple(checks), failures[0] + more)


def approval_status(result: GateResult, requires_approval: bool) -> str:
    if not result.passed:
        return REJECTED
    return PENDING if requires_approval else APPROVED
