"""The one error type users see for bad input: it names the field and the rule that was broken."""

from __future__ import annotations

from collections.abc import Iterable


class SageliftValidationError(ValueError):
    """One or more inputs break a rule. ``problems`` holds (field, rule) pairs, in the order found."""

    def __init__(self, problems: Iterable[tuple[str, str]]):
        self.problems: list[tuple[str, str]] = list(problems)
        if not self.problems:
            raise ValueError("SageliftValidationError needs at least one problem")
        super().__init__(self._render())

    @classmethod
    def single(cls, field: str, rule: str) -> SageliftValidationError:
        return cls([(field, rule)])

    @property
    def fields(self) -> list[str]:
        return [field for field, _ in self.problems]

    def _render(self) -> str:
        if len(self.problems) == 1:
            field, rule = self.problems[0]
            return f"{field}: {rule}"
        lines = [f"{len(self.problems)} problems in the input:"]
        lines += [f"  - {field}: {rule}" for field, rule in self.problems]
        return "\n".join(lines)


class Problems:
    """Collects problems so a user sees every broken rule at once, not one per attempt."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, field: str, rule: str) -> None:
        self.items.append((field, rule))

    def fields(self) -> list[str]:
        return [field for field, _ in self.items]

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise SageliftValidationError(self.items)
