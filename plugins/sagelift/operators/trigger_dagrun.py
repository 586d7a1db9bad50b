"""Start sagemaker_deploy from another DAG (a registered retrain) with a stored conf, passed as data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator


class TriggerDeployRunOperator(TriggerDagRunOperator):
    """TriggerDagRunOperator that passes ``conf`` through verbatim: never rendered, never augmented.

    ``conf`` is left out of the templated fields (so it is neither rendered nor stored as a rendered
    field), and OpenLineage's parent-run keys are not injected (sagemaker_deploy refuses unknown keys).
    """

    template_fields: Sequence[str] = tuple(f for f in TriggerDagRunOperator.template_fields if f != "conf")
    template_fields_renderers: ClassVar[dict[str, str]] = {}

    def __init__(self, *, conf: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(conf=conf, openlineage_inject_parent_info=False, **kwargs)
