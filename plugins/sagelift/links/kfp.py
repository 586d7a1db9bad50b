"""Link from the Airflow task to its run in the Kubeflow Pipelines UI."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

from sagelift.domain.kfp import derive_run_url


class KubeflowPipelinesRunLink(BaseOperatorLink):
    """The URL is stored under the link's XCom key as soon as the run exists, so it shows while deferred."""

    name = "Kubeflow Pipelines run"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        return XCom.get_value(key=self.xcom_key, ti_key=ti_key) or ""

    @classmethod
    def persist(cls, context: Any, *, ui_url: str, run_id: str) -> str:
        url = derive_run_url(ui_url, run_id)
        context["ti"].xcom_push(key=cls().xcom_key, value=url)
        return url
