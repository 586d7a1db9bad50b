"""The organisation's standard tags plus the run's own, checked against AWS tag rules.

The standard set lives in an S3 object, either ``{"Key": "Value", ...}`` or the AWS list form
``[{"Key": ..., "Value": ...}, ...]``. Run tags (model, dag, run, account, the user the run acted for)
are added; on a key clash the run tag wins, since it is what makes a resource traceable to the run that
created it. The merged list goes on every resource the pipeline creates, so it must satisfy the
strictest common rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from sagelift.domain.bounded_json import JsonLimits, parse_json_text
from sagelift.domain.errors import Problems, SageliftValidationError, clip, kind, subfield
from sagelift.domain.ownership import OWNER_TAG_KEY, TAG_PREFIX

MAX_TAGS = 50
MAX_KEY = 128
MAX_VALUE = 256
# Letters, digits and whitespace in any script, plus _ . : / = + - @ (the rule common to AWS services).
TAG_CHARS_RE = re.compile(r"^[\w\s.:/=+\-@]*$")
RESERVED_PREFIX = "aws:"
# A tag document is a flat object or a list of {"Key", "Value"}: read at most 256 KB, 8 levels deep.
TAG_DOCUMENT_LIMITS = JsonLimits(max_chars=256 * 1024, max_depth=8, max_nodes=10_000, max_string=4096)

RUN_TAG_PREFIX = TAG_PREFIX

Tag = dict[str, str]


def parse_tag_document(text: str | bytes, source: str) -> list[Tag]:
    """Parse a standard tag document; errors name ``source`` and the offending entry."""
    field = f"tags ({clip(source, 60)})"
    data, problem = parse_json_text(text, TAG_DOCUMENT_LIMITS)
    if problem is not None:
        raise SageliftValidationError.single(field, problem)
    problems = Problems()
    tags: list[Tag] = []
    if isinstance(data, Mapping):
        for key, value in data.items():
            if not isinstance(value, str):
                problems.add(subfield(field, key), f"tag values must be strings, got {kind(value)}")
                continue
            tags.append({"Key": str(key), "Value": value})
    elif isinstance(data, list):
        for i, item in enumerate(data):
            if not isinstance(item, Mapping) or set(item) - {"Key", "Value"} or "Key" not in item:
                problems.add(f"{field}[{i}]", 'each entry must be {"Key": ..., "Value": ...}')
                continue
            key, value = item["Key"], item.get("Value", "")
            if not isinstance(key, str) or not isinstance(value, str):
                problems.add(f"{field}[{i}]", "Key and Value must be strings")
                continue
            tags.append({"Key": key, "Value": value})
    else:
        problems.add(
            field,
            'must be a JSON object {"Key": "Value"} or a list [{"Key": ..., "Value": ...}], '
            f"got {type(data).__name__}",
        )
    problems.raise_if_any()
    check_tags(tags, field)
    return tags


def check_tags(tags: Iterable[Mapping[str, str]], field: str = "tags") -> None:
    """Raise SageliftValidationError listing every AWS tag rule the tags break."""
    problems = Problems()
    tags = list(tags)
    if len(tags) > MAX_TAGS:
        problems.add(field, f"at most {MAX_TAGS} tags per resource, got {len(tags)}")
    seen: dict[str, str] = {}
    for tag in tags:
        key, value = tag["Key"], tag["Value"]
        where = f"{field}[{key!r}]"
        if not 1 <= len(key) <= MAX_KEY:
            problems.add(where, f"keys are 1-{MAX_KEY} characters, got {len(key)}")
        if len(value) > MAX_VALUE:
            problems.add(where, f"values are at most {MAX_VALUE} characters, got {len(value)}")
        if not TAG_CHARS_RE.match(key) or not TAG_CHARS_RE.match(value):
            problems.add(
                where, "keys and values may contain letters, digits, spaces and _ . : / = + - @ only"
            )
        if key.lower().startswith(RESERVED_PREFIX):
            problems.add(where, "the aws: prefix is reserved for AWS")
        folded = key.lower()
        if folded in seen:
            problems.add(where, f"keys must be unique ignoring case; clashes with {seen[folded]!r}")
        else:
            seen[folded] = key
    problems.raise_if_any()


TRIGGERED_BY_TAG_KEY = f"{RUN_TAG_PREFIX}triggered-by"
# The value when a plan names no user: the KFP engine's components, which cannot learn who triggered
# their run (the Airflow run that submitted it checked and recorded the user).
UNVERIFIED_USER = "unverified"


def derive_run_tags(
    *, model_name: str, dag_id: str, run_id: str, account_id: str, triggered_by: str | None = None
) -> list[Tag]:
    """The tags that tie a resource to the run that made it and the user it acted for.

    ``triggered_by`` is the user the run acted for (the triggering user, or a retrain's owner); a
    character AWS does not allow in tag values becomes '_' and the value is cut at 256 characters.
    """
    return [
        {"Key": OWNER_TAG_KEY, "Value": model_name},
        {"Key": f"{RUN_TAG_PREFIX}dag-id", "Value": dag_id[:MAX_VALUE]},
        {"Key": f"{RUN_TAG_PREFIX}run-id", "Value": _tag_safe(run_id)[:MAX_VALUE]},
        {"Key": f"{RUN_TAG_PREFIX}account-id", "Value": account_id},
        {"Key": TRIGGERED_BY_TAG_KEY, "Value": _tag_safe(triggered_by or UNVERIFIED_USER)[:MAX_VALUE]},
    ]


def _tag_safe(value: str) -> str:
    return "".join(ch if TAG_CHARS_RE.match(ch) else "_" for ch in value)


def merge_tags(standard: Iterable[Mapping[str, str]], run: Iterable[Mapping[str, str]]) -> list[Tag]:
    """Standard tags first, run tags after; a run tag replaces a standard tag of the same key (any case)."""
    run_list: list[Tag] = [dict(tag) for tag in run]
    run_keys = {tag["Key"].lower() for tag in run_list}
    merged: list[Tag] = [dict(tag) for tag in standard if tag["Key"].lower() not in run_keys]
    merged += run_list
    check_tags(merged, "tags (merged)")
    return merged


def tags_as_map(tags: Iterable[Mapping[str, str]]) -> dict[str, Any]:
    """The ``{"key": "value"}`` form that API Gateway and ECR-style APIs take."""
    return {tag["Key"]: tag["Value"] for tag in tags}
