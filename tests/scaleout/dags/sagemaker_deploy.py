"""sagemaker_deploy as dags/sagemaker_deploy.py defines it, but a failed try is retried after 2 s instead of
30 s: the worker-kill test (tests/scaleout/) waits for the retry of the killed try, and the delay before
it proves nothing there. Retries, their number and everything else are the shipped DAG's. (Airflow parses a file only when it
names both "airflow" and "dag", as this sentence does.)"""

from __future__ import annotations

from datetime import timedelta

from sagelift.dags.sagemaker_deploy import dag

for task in dag.tasks:
    task.retry_delay = timedelta(seconds=2)
