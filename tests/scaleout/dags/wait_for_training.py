"""### wait_for_training: the triggerer failover test's 100 deferred waits (tests/scaleout/)

One task per emulated training job ``scaleout-wait-000`` .. ``-099``, each a deferred wait from start to
end (see tests/scaleout/waits.py).
"""

from __future__ import annotations

from airflow.sdk import DAG

from tests.scaleout.waits import WaitForTrainingOperator

WAITS = 100
ACCOUNT = "333333333333"

with DAG(
    dag_id="wait_for_training",
    schedule=None,
    catchup=False,
    max_active_tasks=WAITS,
    doc_md=__doc__,
    tags=["sagelift-tests"],
):
    for index in range(WAITS):
        WaitForTrainingOperator(
            task_id=f"wait_{index:03d}",
            job_name=f"scaleout-wait-{index:03d}",
            aws_conn_id=f"sagelift_aws_{ACCOUNT}",
            region_name="us-east-1",
        )
