"""What makes a resource sagelift's, and which model's: the one owner-tag key and the per-run name rule.

Every resource a run creates carries the tag ``sagelift:model-name=<model_name>``; per-run resources
(training job, model, endpoint config) are named ``<model_name>-<8 hex run key>``, the endpoint and the
API ``<model_name>``. A step that updates, prunes or deletes a resource first checks both, so a
look-alike made by someone else (another team's endpoint of the same name, a model a scientist created
by hand) is never touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

TAG_PREFIX = "sagelift:"
OWNER_TAG_KEY = f"{TAG_PREFIX}model-name"
RUN_KEY_LEN = 8


def is_owned(tags: Iterable[Mapping[str, str]], model_name: str) -> bool:
    """The AWS list form of tags carries this model's owner tag."""
    return any(t.get("Key") == OWNER_TAG_KEY and t.get("Value") == model_name for t in tags)


def owner_of(tags: Iterable[Mapping[str, str]]) -> str | None:
    """The model an owner tag names, or None for a resource sagelift did not create."""
    for tag in tags:
        if tag.get("Key") == OWNER_TAG_KEY:
            return str(tag.get("Value"))
    return None


def per_run_name_re(model_name: str) -> re.Pattern[str]:
    return re.compile(re.escape(model_name) + rf"-[0-9a-f]{{{RUN_KEY_LEN}}}")


def is_per_run_name(name: str, model_name: str) -> bool:
    """``<model_name>-<run key>``: the shape of a run's model, endpoint config and training job."""
    return per_run_name_re(model_name).fullmatch(name) is not None
