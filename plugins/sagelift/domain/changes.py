"""A run's change set: what a run would create, update or leave unchanged, before it changes anything.

``plan_only: true`` (and ``make plan CONF=...``) stops a run after the read-only calls of
sagelift.steps.plan_changes, like a CloudFormation change set: for every resource the run would touch it
reports one ``Change``: ``create``, ``update`` with the fields that change (old -> new), ``delete``
(what an earlier run put there and this run's conf no longer asks for), or ``unchanged``. The diffs here compare the request a step would send (built by the same builders the
step uses) with what a Describe/List/Get call returned, field by field, over the request's own fields
only: a description carries much more (ARNs, dates, statuses) that no request sets.

Pure: no AWS client, nothing rendered by Jinja; ``ChangeSet.to_xcom``/``from_xcom`` carry it between
tasks and engines as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sagelift.domain.notes import escape_markdown

Action = Literal["create", "update", "delete", "unchanged"]
ACTIONS: tuple[Action, ...] = ("create", "update", "delete", "unchanged")
SYMBOLS: Mapping[str, str] = {"create": "+", "update": "~", "delete": "-", "unchanged": "="}
# What a rendered value is clipped to: a resource policy or a long environment stays readable.
VALUE_MAX = 120
ABSENT = "(absent)"


@dataclass(frozen=True)
class FieldChange:
    """One field of a resource that the run would change: its path in the request, old and new value."""

    path: str
    old: Any
    new: Any

    def render(self) -> str:
        return f"{self.path}: {show_value(self.old)} -> {show_value(self.new)}"


@dataclass(frozen=True)
class Change:
    """What the run would do to one resource. ``note`` says why, where the action alone does not."""

    kind: str
    name: str
    action: Action
    fields: tuple[FieldChange, ...] = ()
    note: str = ""

    def render(self) -> list[str]:
        head = f"{SYMBOLS[self.action]} {self.action:<9} {self.kind} {self.name}"
        lines = [head + (f"  ({self.note})" if self.note else "")]
        lines += [f"      {f.render()}" for f in self.fields]
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "fields": [{"path": f.path, "old": f.old, "new": f.new} for f in self.fields],
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Change:
        return cls(
            kind=str(data["kind"]),
            name=str(data["name"]),
            action=data["action"],
            fields=tuple(FieldChange(str(f["path"]), f.get("old"), f.get("new")) for f in data["fields"]),
            note=str(data.get("note") or ""),
        )


def create(kind: str, name: str, note: str = "") -> Change:
    return Change(kind, name, "create", note=note)


def delete(kind: str, name: str, note: str = "") -> Change:
    return Change(kind, name, "delete", note=note)


def update_or_unchanged(kind: str, name: str, fields: Iterable[FieldChange], note: str = "") -> Change:
    """``update`` when any field changes, else ``unchanged``."""
    found = tuple(fields)
    return Change(kind, name, "update" if found else "unchanged", found, note)


@dataclass(frozen=True)
class ChangeSet:
    """The run's changes in the order the run makes them, and what it was computed for."""

    model_name: str
    account_id: str
    run_id: str
    changes: tuple[Change, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def counts(self) -> dict[str, int]:
        return {action: sum(c.action == action for c in self.changes) for action in ACTIONS}

    def of(self, action: Action) -> list[Change]:
        return [c for c in self.changes if c.action == action]

    def render(self) -> str:
        counts = self.counts()
        lines = [
            f"Plan for model {self.model_name} in account {self.account_id} (run {self.run_id}): "
            f"{counts['create']} to create, {counts['update']} to update, "
            + (f"{counts['delete']} to delete, " if counts["delete"] else "")
            + f"{counts['unchanged']} unchanged. "
            "Nothing was changed.",
        ]
        for change in self.changes:
            lines += change.render()
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def note(self) -> str:
        """The run's note for a plan-only run (Markdown, every run-given part escaped)."""
        counts = self.counts()
        told = ", ".join(f"{counts[a]} to {a}" for a in ("create", "update", "delete") if counts[a])
        head = f"**{escape_markdown(self.model_name, 80)}** in account {escape_markdown(self.account_id, 20)}"
        return f"{head}: plan only, {told or 'nothing to change'}; nothing was changed."

    def to_xcom(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "account_id": self.account_id,
            "run_id": self.run_id,
            "counts": self.counts(),
            "changes": [c.to_dict() for c in self.changes],
            "notes": list(self.notes),
        }

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any]) -> ChangeSet:
        return cls(
            model_name=str(data["model_name"]),
            account_id=str(data["account_id"]),
            run_id=str(data["run_id"]),
            changes=tuple(Change.from_dict(c) for c in data["changes"]),
            notes=tuple(str(n) for n in data.get("notes") or ()),
        )


# --- diffs -------------------------------------------------------------------------------------------
def show_value(value: Any) -> str:
    if value is None:
        return ABSENT
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= VALUE_MAX else text[: VALUE_MAX - 3] + "..."


def _same(wanted: Any, current: Any) -> bool:
    """Equal as AWS compares them: 1 and 1.0 are the same weight, a bool is not a number."""
    numbers = (int, float)
    if isinstance(wanted, numbers) and isinstance(current, numbers):
        if isinstance(wanted, bool) or isinstance(current, bool):
            return wanted is current
        return float(wanted) == float(current)
    return bool(wanted == current)


def diff_request(
    wanted: Mapping[str, Any],
    current: Mapping[str, Any] | None,
    *,
    ignore: Sequence[str] = ("Tags", "tags"),
    prefix: str = "",
) -> list[FieldChange]:
    """The fields of ``wanted`` (a request body) whose value differs in ``current`` (a description).

    Only the request's own fields are compared, recursively through objects and lists (a list of
    another length is one change); ``ignore`` names top-level fields compared elsewhere (tags, which an
    update adds rather than replaces: see ``diff_tags``).
    """
    current = current or {}
    changes: list[FieldChange] = []
    for key, value in wanted.items():
        if not prefix and key in ignore:
            continue
        path = f"{prefix}.{key}" if prefix else str(key)
        changes += _diff_value(path, value, current.get(key))
    return changes


def _diff_value(path: str, wanted: Any, current: Any) -> list[FieldChange]:
    if isinstance(wanted, Mapping) and isinstance(current, Mapping):
        return diff_request(wanted, current, ignore=(), prefix=path)
    if isinstance(wanted, list) and isinstance(current, list) and len(wanted) == len(current):
        found: list[FieldChange] = []
        for i, (w, c) in enumerate(zip(wanted, current, strict=True)):
            found += _diff_value(f"{path}[{i}]", w, c)
        return found
    return [] if _same(wanted, current) else [FieldChange(path, current, wanted)]


def tag_map(tags: Iterable[Mapping[str, str]] | Mapping[str, str] | None) -> dict[str, str]:
    """Tags as a dict, from the AWS list form (``[{"Key", "Value"}]``) or a map (API Gateway's)."""
    if tags is None:
        return {}
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    return {str(t["Key"]): str(t["Value"]) for t in tags}


def diff_tags(wanted: Any, current: Any, path: str = "Tags") -> list[FieldChange]:
    """Tags the run would add or change; tags the resource has beyond them are kept (AddTags, TagResource)."""
    have = tag_map(current)
    return [
        FieldChange(f"{path}.{key}", have.get(key), value)
        for key, value in sorted(tag_map(wanted).items())
        if have.get(key) != value
    ]


def diff_patch(operations: Iterable[Mapping[str, str]], current: Mapping[str, Any]) -> list[FieldChange]:
    """An API Gateway patch (``replace``/``add``/``remove`` operations) as field changes, old values read
    from ``current`` by the operation's path where the path names a field of it.

    Paths are JSON pointers (``~1`` is ``/``); an ``add`` or ``remove`` of a list item names the item in
    its path (``/binaryMediaTypes/image~1*``), shown as the list gaining or losing it."""
    changes = []
    for op in operations:
        parts = [_unescape(p) for p in str(op["path"]).strip("/").split("/")]
        old = _at_path(current, parts)
        new = None if op["op"] == "remove" else op.get("value")
        path = ".".join(parts)
        parent = _at_path(current, parts[:-1]) if len(parts) > 1 else None
        if op["op"] in ("add", "remove") and (
            isinstance(parent, list) or (op["op"] == "add" and new is None)
        ):
            path = ".".join(parts[:-1])
            old, new = (None, parts[-1]) if op["op"] == "add" else (parts[-1], None)
        elif op["op"] == "add":
            old = None
        if old is not None and new is not None and _same_text(old, new):
            continue
        changes.append(FieldChange(path, old, new))
    return changes


def _unescape(part: str) -> str:
    return part.replace("~1", "/").replace("~0", "~")


def _same_text(old: Any, new: Any) -> bool:
    """A patch value (text) against a described one: '100' is 100.0, 'true' is True."""
    if str(old) == str(new) or (isinstance(old, bool) and str(old).lower() == str(new)):
        return True
    try:
        return float(old) == float(new)
    except (TypeError, ValueError):
        return False


def _at_path(current: Mapping[str, Any], parts: Sequence[str]) -> Any:
    node: Any = current
    for part in parts:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node
