"""The one error type users see for bad input: it names the field and the rule that was broken.

Messages are read by people in a task log, a form or a REST answer, so they stay short whatever the
input: the first line names one field and its rule in at most ``FIRST_LINE_MAX`` characters (callers
prefix it, e.g. "Invalid run configuration. ", and the whole line must stay within 200), user values are
shown through ``show`` (clipped, never rendered in full), and a list of problems is capped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

# Room for a caller's prefix within the 200 characters a first line may have.
FIRST_LINE_MAX = 160
FIELD_MAX = 80
LISTED_PROBLEMS_MAX = 20
_PLAIN_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marking the cut with '...'."""
    return text if len(text) <= limit else text[: max(0, limit - 3)] + "..."


def clip_middle(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters in its middle: a rule worded after a long value keeps both
    its start and its end (where the rule usually is)."""
    if len(text) <= limit:
        return text
    head = max(0, (limit - 3) * 2 // 5)
    tail = max(0, limit - 3 - head)
    return text[:head] + "..." + (text[-tail:] if tail else "")


def show(value: Any, limit: int = 40) -> str:
    """A user value as it may appear in a message: short, and safe to compute for any input.

    Strings are quoted and clipped; numbers too large to print cheaply, containers and other objects are
    described by their kind (a repr of a deeply nested or huge value would itself fail or flood the log).
    """
    if isinstance(value, str):
        return repr(value) if len(value) <= limit else repr(value[: max(1, limit - 3)]) + "..."
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        if value.bit_length() > 64:
            return f"a number of about {int(value.bit_length() * 0.30103)} digits"
        return clip(str(value), limit)
    if isinstance(value, float):
        return clip(repr(value), limit)
    if isinstance(value, dict):
        return f"an object of {len(value)} entries"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)} items"
    return f"a value of type {type(value).__name__}"


def kind(value: Any) -> str:
    """The JSON kind of ``value`` as a message says it ("a string", "an object", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def subfield(prefix: str, key: Any) -> str:
    """The field name of ``key`` inside ``prefix``: ``prefix.key`` for plain keys, else a clipped repr."""
    if isinstance(key, str) and _PLAIN_KEY_RE.match(key):
        return f"{prefix}.{key}"
    return f"{prefix}[{show(key, 24)}]"


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
        """The first problem on the first line (with the count of the others), then the others listed."""
        field, rule = self.problems[0]
        more = len(self.problems) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        head = clip(" ".join(field.split()), FIELD_MAX) + ": "
        lines = [
            head + clip_middle(" ".join(rule.split()), FIRST_LINE_MAX - len(head) - len(suffix)) + suffix
        ]
        for other_field, other_rule in self.problems[1 : LISTED_PROBLEMS_MAX + 1]:
            lines.append(
                f"  - {clip(other_field, FIELD_MAX)}: {clip_middle(' '.join(other_rule.split()), 300)}"
            )
        if more > LISTED_PROBLEMS_MAX:
            lines.append(f"  - ... and {more - LISTED_PROBLEMS_MAX} more")
        return "\n".join(lines)


PLATFORM_FIELD = "platform"
RUN_HEADING = "Invalid run configuration."
PLATFORM_HEADING = "Platform configuration error."
PLATFORM_OWNER = (
    "An ML engineer fixes the Airflow Variable 'sagelift_platform' (README 'Platform configuration'); "
    "the run's conf is not at fault."
)


def is_platform_field(field: str) -> bool:
    """Whether a problem's field is in the platform configuration (the ML engineer's), not the conf."""
    return field == PLATFORM_FIELD or field.startswith((PLATFORM_FIELD + ".", PLATFORM_FIELD + "["))


def headed_message(error: SageliftValidationError) -> str:
    """validate's message, headed by whose mistake it is.

    A broken platform configuration is the ML engineer's to fix, whatever the conf holds: its problems
    lead under a platform heading and the line after says who fixes it; the conf's problems follow. A
    conf alone is "Invalid run configuration." Both headings fit the room ``FIRST_LINE_MAX`` leaves.
    """
    platform = [p for p in error.problems if is_platform_field(p[0])]
    if not platform:
        return f"{RUN_HEADING} {error}"
    ordered = SageliftValidationError(platform + [p for p in error.problems if not is_platform_field(p[0])])
    first, _, rest = str(ordered).partition("\n")
    return "\n".join(line for line in (f"{PLATFORM_HEADING} {first}", PLATFORM_OWNER, rest) if line)


class Problems:
    """Collects problems so a user sees every broken rule at once, not one per attempt."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, field: str, rule: str) -> None:
        self.items.append((field, rule))

    def extend(self, error: SageliftValidationError) -> None:
        self.items.extend(error.problems)

    def fields(self) -> list[str]:
        return [field for field, _ in self.items]

    def has(self, field: str) -> bool:
        """Whether ``field`` or anything inside it already has a problem."""
        return any(f == field or f.startswith((field + ".", field + "[")) for f, _ in self.items)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        if self.items:
            raise SageliftValidationError(self.items)
