"""Step 3, resolve_tags: the organisation's standard tags from S3, merged with the run's own.

The workflow is the core's (sagelift.steps.tags); this adapter gives it the scientist account's S3
client and pushes the merged tags, which every later step applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from airflow.sdk import BaseOperator

from sagelift.operators.base import StepInputs, step_errors
from sagelift.steps.tags import resolve_tags


class S3ResolveTagsOperator(StepInputs, BaseOperator):
    """Returns the merged tags in the AWS list form."""

    template_fields: Sequence[str] = ("plan", "session")
    ui_color = "#f3f0ff"

    def __init__(self, *, plan: Any = None, session: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._store_inputs(plan=plan, session=session)

    def execute(self, context: Any) -> list[dict[str, str]]:
        plan, session = self.read_plan(), self.read_session()
        with step_errors():
            # Making the client assumes the role chain in this process: a refused hop is final.
            s3: Any = S3Hook(aws_conn_id=session.aws_conn_id, region_name=session.region).get_conn()
            return resolve_tags(plan, s3)
